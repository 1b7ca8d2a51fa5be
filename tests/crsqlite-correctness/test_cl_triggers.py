"""Causal length kept by local writes: inserts make it odd, deletes even, updates leave it; upserts,
INSERT OR IGNORE/REPLACE, repeated deletes and primary-key changes included.
"""

import sqlite3

import pytest

from harness import Upstream, changes, connect, intended_difference, pk


def foo_db(b_type="INTEGER"):
    c = connect()
    c.execute(f"CREATE TABLE foo (a INTEGER PRIMARY KEY NOT NULL, b {b_type}) STRICT")
    c.execute("SELECT crsql_as_crr('foo')")
    c.commit()
    return c


def run(c, *statements):
    for s in statements:
        c.execute(s)
    c.commit()


SENTINELS = "WHERE cid = '-1'"


def pk_change(actual, expected):
    """The same change rows as cr-sqlite after a primary-key change, in its order as documented."""
    upstream = Upstream("pk-change")
    upstream.check(actual, expected, unordered=True)
    upstream.settle()


def test_upsert_non_existing():
    c = connect()
    c.execute("CREATE TABLE foo (a INTEGER PRIMARY KEY NOT NULL NOT NULL, b TEXT) STRICT")
    c.execute("SELECT crsql_as_crr('foo')")
    c.commit()

    # Both upsert forms, on rows that never existed: each starts its first life.
    run(c, "INSERT OR REPLACE INTO foo VALUES (1, '2')")
    run(c, "INSERT INTO foo VALUES (2, '3') ON CONFLICT DO UPDATE SET b = '4'")

    assert changes(c, "pk, cl") == [(pk(1), 1), (pk(2), 1)]


def test_insert_delete_insert_delete():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)", "DELETE FROM foo")
    run(c, "INSERT INTO foo VALUES (1, 2)", "DELETE FROM foo")

    # The count goes on: 1, 2, 3, 4.
    assert changes(c, "pk, cid, cl", SENTINELS) == [(pk(1), "-1", 4)]


def test_upsert_previously_existing():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)")
    run(c, "DELETE FROM foo")
    # The row is gone but its delete record remains: the upsert re-inserts it.
    run(c, "INSERT INTO foo VALUES (1, 4) ON CONFLICT DO UPDATE SET b = b")
    assert changes(c, "pk, cid, cl", SENTINELS) == [(pk(1), "-1", 3)]

    run(c, "INSERT INTO foo VALUES (2, 2)", "DELETE FROM foo", "INSERT OR REPLACE INTO foo VALUES (2, 4)")
    # Row 1 was deleted again (4); row 2 lived, died and came back once (3).
    assert changes(c, "pk, cid, cl", SENTINELS) == [(pk(1), "-1", 4), (pk(2), "-1", 3)]


def test_upsert_currently_existing():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)")
    # REPLACE of a live row keeps its life: no new sentinel, cl stays 1.
    run(c, "INSERT OR REPLACE INTO foo VALUES (1, 3)")
    assert changes(c, "pk, cid, cl") == [(pk(1), "b", 1)]

    # The DO UPDATE form is an update: cl stays 1 as well.
    run(c, "INSERT INTO foo VALUES (1, 4) ON CONFLICT DO UPDATE SET b = b")
    assert changes(c, "pk, cid, cl") == [(pk(1), "b", 1)]


def test_update_existing():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)")
    c.execute("UPDATE foo SET b = 3 WHERE a = 1")
    assert changes(c, "pk, cid, cl") == [(pk(1), "b", 1)]
    c.commit()

    run(c, "UPDATE foo SET b = 3 WHERE a = 3")  # matches no row
    assert changes(c, "pk, cid, cl") == [(pk(1), "b", 1)]


def test_insert_existing():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)")
    with pytest.raises(sqlite3.IntegrityError):
        run(c, "INSERT INTO foo VALUES (1, 2)")
    # The failed statement left nothing behind, even inside the still open transaction.
    assert changes(c, "pk, cid, cl") == [(pk(1), "b", 1)]


def test_insert_or_ignore_existing():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)")
    run(c, "INSERT OR IGNORE INTO foo VALUES (1, 3)")
    assert changes(c, "pk, cid, cl") == [(pk(1), "b", 1)]


def test_delete_existing():
    c = foo_db()
    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.execute("DELETE FROM foo")
    got = changes(c, "pk, cid, cl", SENTINELS)
    c.commit()
    assert got == [(pk(1), "-1", 2)]


def test_delete_previously_deleted():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)", "DELETE FROM foo")
    run(c, "DELETE FROM foo")  # no row left to delete: nothing recorded
    assert changes(c, "pk, cid, cl", SENTINELS) == [(pk(1), "-1", 2)]


@intended_difference("pk-change")
def test_change_primary_key_to_something_new():
    c = foo_db()
    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.execute("UPDATE foo SET a = 2 WHERE a = 1")
    # Key 1 died (cl 2); key 2 began its first life (cl 1) and took column b along. (Order:
    # cr-sqlite's b keeps the seq of its insert, synqlite's is recorded again after the
    # sentinels.)
    pk_change(changes(c, "pk, cid, cl"), [(pk(2), "b", 1), (pk(1), "-1", 2), (pk(2), "-1", 1)])


@intended_difference("pk-change")
def test_change_primary_key_to_previously_existing():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)", "INSERT INTO foo VALUES (2, 3)")
    c.execute("DELETE FROM foo WHERE a = 2")
    c.execute("UPDATE foo SET a = 2 WHERE a = 1")
    # Key 1 died (2); key 2, dead, came back for a third life (3).
    pk_change(changes(c, "pk, cid, cl"), [(pk(2), "b", 3), (pk(1), "-1", 2), (pk(2), "-1", 3)])


@intended_difference("pk-change")
def test_change_primary_key_to_currently_existing():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)", "INSERT INTO foo VALUES (2, 3)")
    run(c, "UPDATE OR REPLACE foo SET a = 2 WHERE a = 1")
    # Key 1 died (2); key 2 was replaced while alive, so it keeps its first life (1).
    pk_change(changes(c, "pk, cid, cl"), [(pk(2), "b", 1), (pk(1), "-1", 2), (pk(2), "-1", 1)])


@intended_difference("pk-change")
def test_change_primary_key_away_from_thing_with_large_length():
    c = foo_db()
    run(
        c,
        "INSERT INTO foo VALUES (1, 2)",
        "DELETE FROM foo",
        "INSERT INTO foo VALUES (1, 2)",
        "DELETE FROM foo",
        "INSERT INTO foo VALUES (1, 2)",
    )
    c.execute("UPDATE foo SET a = 2 WHERE a = 1")
    # Key 1 is deleted a third time (6); key 2 begins its first life (1).
    pk_change(changes(c, "pk, cid, cl"), [(pk(2), "b", 1), (pk(1), "-1", 6), (pk(2), "-1", 1)])


def test_insert_previously_existing():
    c = foo_db()
    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.execute("DELETE FROM foo")
    c.execute("INSERT INTO foo VALUES (1, 2)")
    assert changes(c, "pk, cid, cl") == [(pk(1), "-1", 3), (pk(1), "b", 3)]


def test_sequence():
    # Upstream leaves this case empty (a plan for a random sequence of writes on one row). Here
    # a fixed mixed sequence on one key: the causal length is odd exactly while the row exists
    # and only ever grows.
    c = foo_db()
    steps = [
        ("INSERT INTO foo VALUES (1, 1)", True),
        ("INSERT OR IGNORE INTO foo VALUES (1, 2)", True),
        ("INSERT OR REPLACE INTO foo VALUES (1, 3)", True),
        ("INSERT INTO foo VALUES (1, 4) ON CONFLICT DO UPDATE SET b = 5", True),
        ("UPDATE foo SET b = 6 WHERE a = 1", True),
        ("DELETE FROM foo WHERE a = 1", False),
        ("DELETE FROM foo WHERE a = 1", False),
        ("INSERT OR REPLACE INTO foo VALUES (1, 7)", True),
        ("DELETE FROM foo", False),
        ("INSERT INTO foo VALUES (1, 8) ON CONFLICT DO UPDATE SET b = 9", True),
    ]
    last = 0
    for sql, alive in steps:
        run(c, sql)
        cl = changes(c, "max(cl)")[0][0]
        assert cl >= last, sql
        assert (cl % 2 == 1) == alive, sql
        assert (c.execute("SELECT count(*) FROM foo").fetchone()[0] == 1) == alive, sql
        last = cl
    assert last == 5
