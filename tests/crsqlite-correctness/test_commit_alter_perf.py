"""crsql_begin_alter / crsql_commit_alter on a 10k-row table: with no change, then adding a column.

Upstream only prints the times; here the same steps run and the results are checked too (the
rows keep their clocks, the new column is accepted), with the times printed (`pytest -s`).
"""

import time

from harness import changes, connect


def test_commit_alter_perf():
    c = connect()
    c.execute(
        "CREATE TABLE issue (id INTEGER PRIMARY KEY NOT NULL, title TEXT, owner TEXT, "
        "status INTEGER, priority INTEGER)"
    )
    c.execute("SELECT crsql_as_crr('issue')")
    c.commit()

    t0 = time.perf_counter()
    for _ in range(10_000):
        c.execute("INSERT INTO issue (title, owner, status, priority) VALUES ('title', 'owner', 1, 1)")
    c.commit()
    t1 = time.perf_counter()
    c.execute("SELECT crsql_begin_alter('issue')")
    c.execute("SELECT crsql_commit_alter('issue')")
    t2 = time.perf_counter()
    c.execute("SELECT crsql_begin_alter('issue')")
    c.execute("ALTER TABLE issue ADD COLUMN description TEXT")
    c.execute("SELECT crsql_commit_alter('issue')")
    t3 = time.perf_counter()
    c.commit()
    print(f"insert 10k: {t1 - t0:.3f} s, empty alter: {t2 - t1:.3f} s, add column: {t3 - t2:.3f} s")

    assert changes(c, "count(*)") == [(40_000,)]
    c.execute("UPDATE issue SET description = 'd' WHERE id = 1")
    c.commit()
    assert changes(c, "cid, val, col_version", "WHERE cid = 'description'") == [("description", "d", 1)]
