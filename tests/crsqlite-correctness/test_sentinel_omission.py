"""Sentinel rows (cid '-1') appear only when a row's life changes: not on a first insert into a
table with non-pk columns, not on REPLACE of a live row, not from merges of such rows; a delete
always records one, and merging a delete carries it.
"""

from harness import changes, connect, db_version, sync

SENTINEL_COUNT = "count(*)"
SENTINELS = "WHERE cid = '-1'"


def two_tables():
    c = connect()
    for t in ("test", "test2"):
        c.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY NOT NULL, [text] TEXT)")
        c.execute(f"SELECT crsql_as_crr('{t}')")
    c.commit()
    return c


def fill(c, verb="INSERT"):
    """200 transactions of four writes: ids n and n + 10000 in both tables (800 rows)."""
    for n in range(200):
        for t in ("test", "test2"):
            for key in (n, n + 10000):
                c.execute(f"{verb} INTO {t} (id, text) VALUES (?, ?)", (key, f"hello {n}"))
        c.commit()


def sentinels(c):
    return changes(c, SENTINEL_COUNT, SENTINELS)[0][0]


def test_omitted_on_insert():
    c = two_tables()
    fill(c)
    assert sentinels(c) == 0


def test_created_on_delete():
    c = two_tables()
    fill(c)
    c.execute("DELETE FROM test")
    c.execute("DELETE FROM test2")
    c.commit()
    assert sentinels(c) == 800


def test_not_created_on_replace():
    c = two_tables()
    fill(c)
    fill(c, "INSERT OR REPLACE")
    assert sentinels(c) == 0


def test_not_created_on_merge():
    a, b = two_tables(), two_tables()
    fill(a)
    sync(a, b)
    assert sentinels(a) == 0
    assert sentinels(b) == 0


def test_not_created_on_noop_merge():
    a, b = two_tables(), two_tables()
    fill(a)
    fill(b)
    sync(a, b)  # same rows, same clocks, same values: nothing to do
    assert sentinels(a) == 0
    assert sentinels(b) == 0
    assert db_version(a) == db_version(b)


def test_not_created_on_update_merge():
    a, b = two_tables(), two_tables()
    fill(a)
    fill(b)
    for n in range(200):
        for key in (n, n + 10000):
            a.execute("UPDATE test SET text = ? WHERE id = ?", (f"goodbye {n}", key))
    a.commit()
    sync(a, b)
    assert sentinels(b) == 0


def test_sentinel_propagated_when_present():
    a, b = two_tables(), two_tables()
    fill(a)
    a.execute("DELETE FROM test")
    a.execute("DELETE FROM test2")
    a.commit()
    sync(a, b)
    assert sentinels(b) == 800
