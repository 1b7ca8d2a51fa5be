"""seq: numbers the writes of one transaction from 0, restarts with each transaction, counts
every clock written (columns and sentinels), and is assigned as expected on re-inserts.
"""

from harness import ALL_COLUMNS, SEQ, Upstream, changes, connect, intended_difference, sync


def foo_db(columns="id PRIMARY KEY NOT NULL, a"):
    c = connect()
    c.execute(f"CREATE TABLE foo ({columns})")
    c.execute("SELECT crsql_as_crr('foo')")
    c.commit()
    return c


def run(c, *statements):
    for s in statements:
        c.execute(s)
    c.commit()


def clock_seqs(c, table="foo", order=""):
    return c.execute(f"SELECT seq FROM {table}__crsql_clock {order}").fetchall()


def test_increments_by_one_in_tx():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)", "INSERT INTO foo VALUES (2, 3)")
    assert clock_seqs(c) == [(0,), (1,)]


def test_resets_on_every_tx():
    c = foo_db()
    run(c, "INSERT INTO foo VALUES (1, 2)", "INSERT INTO foo VALUES (2, 3)")
    assert clock_seqs(c) == [(0,), (1,)]
    run(c, "INSERT INTO foo VALUES (3, 4)", "INSERT INTO foo VALUES (5, 6)")
    assert clock_seqs(c) == [(0,), (1,), (0,), (1,)]


@intended_difference("merge-seq")
def test_preserved_on_merge():
    # Change rows merged in (db_version, seq) order come back out of the receiver in the same
    # order, with the same seqs. (Upstream's version compares the sender's rows with
    # themselves, so it holds trivially; here the receiver's are compared with the sender's.)
    c, c2 = foo_db(), foo_db()
    run(
        c,
        "INSERT INTO foo VALUES (1, 2)",
        "INSERT INTO foo VALUES (2, 3)",
        "INSERT INTO foo VALUES (3, 4)",
        "INSERT INTO foo VALUES (5, 6)",
        "UPDATE foo SET a = 1 WHERE id = 1",
        "DELETE FROM foo WHERE id = 2",
    )
    sync(c, c2, order=True)
    upstream = Upstream("merge-seq")
    # The order is kept even where the seqs differ.
    upstream.check(changes(c2, f"{ALL_COLUMNS}, seq"), changes(c, f"{ALL_COLUMNS}, seq"), ignore=[SEQ, SEQ + 1])
    upstream.settle()


def test_incr_by_one():
    c = foo_db("a PRIMARY KEY NOT NULL, b, c, d")
    run(c, *(f"INSERT INTO foo VALUES ({k}, 2, 3, 4)" for k in (1, 2, 3)))
    # Three columns per row, no sentinel on a first insert.
    assert changes(c, "seq", "WHERE db_version = 1") == [(i,) for i in range(9)]

    run(c, *(f"UPDATE foo SET c = 'c', d = 'd' WHERE a = {k}" for k in (1, 2, 3)))
    assert changes(c, "seq", "WHERE db_version = 2") == [(i,) for i in range(6)]

    run(c, *(f"UPDATE foo SET b = 'b' WHERE a = {k}" for k in (1, 2, 3)))
    assert changes(c, "seq", "WHERE db_version = 3") == [(i,) for i in range(3)]

    run(c, "DELETE FROM foo")  # one sentinel per row; the column clocks go
    assert changes(c, "seq") == [(0,), (1,), (2,)]

    c.execute("CREATE TABLE bar (a PRIMARY KEY NOT NULL, b)")
    c.execute("SELECT crsql_as_crr('bar')")
    c.commit()
    run(c, "INSERT INTO bar VALUES (1, 2)", "INSERT INTO bar VALUES (3, 4)")  # version 5
    run(c, "UPDATE bar SET b = 'b' WHERE a = 1", "UPDATE bar SET b = 'b' WHERE a = 3")  # version 6
    assert c.execute("SELECT db_version, seq FROM bar__crsql_clock ORDER BY db_version").fetchall() == [
        (6, 0),
        (6, 1),
    ]

    # Primary-key-only table: a key change is a delete of the old key and an insert of the new.
    c.execute("CREATE TABLE baz (a PRIMARY KEY NOT NULL)")
    c.execute("SELECT crsql_as_crr('baz')")
    c.commit()
    run(c, "INSERT INTO baz VALUES (1)", "INSERT INTO baz VALUES (2)")
    assert clock_seqs(c, "baz") == [(0,), (1,)]
    run(c, "UPDATE baz SET a = 11 WHERE a = 1", "UPDATE baz SET a = 22 WHERE a = 2")
    assert clock_seqs(c, "baz", "ORDER BY db_version, seq") == [(0,), (1,), (2,), (3,)]


def test_seq_when_re_inserting():
    c = foo_db("a PRIMARY KEY NOT NULL, b")
    run(c, "INSERT INTO foo VALUES (1, 2)")
    assert changes(c, "seq") == [(0,)]
    run(c, "DELETE FROM foo")
    assert changes(c, "seq") == [(0,)]
    # Re-insert: 0 for the sentinel (the new life), 1 for b.
    run(c, "INSERT INTO foo VALUES (1, 2)")
    assert changes(c, "seq") == [(0,), (1,)]


def test_seq_when_updating_after_reinsert():
    c = foo_db("a PRIMARY KEY NOT NULL, b")
    run(c, "INSERT INTO foo VALUES (1, 2)")
    run(c, "DELETE FROM foo")
    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.execute("UPDATE foo SET b = 3 WHERE a = 1")
    got = changes(c, "seq")
    c.commit()
    # 0: the sentinel; 1 went to b = 2 and was overwritten in the same transaction by b = 3 (2).
    assert got == [(0,), (2,)]


def test_seq_when_resinserting_from_merge():
    c = foo_db("a PRIMARY KEY NOT NULL, b")
    run(c, "INSERT INTO foo VALUES (1, 2)")
    run(c, "DELETE FROM foo")
    run(c, "INSERT INTO foo VALUES (1, 2)")

    c2 = foo_db("a PRIMARY KEY NOT NULL, b")
    run(c2, "INSERT INTO foo VALUES (1, 2)")
    run(c2, "DELETE FROM foo")

    sync(c, c2)  # the re-insert reaches c2, where the row is dead

    assert changes(c2, "seq") == [(0,), (1,)]
