"""Opening databases written earlier.

Upstream opens `prior-dbs/v0.15.0.prior-db` (a file written by cr-sqlite 0.15, whose metadata
layout synqlite does not read) read/write once, then read-only. Here the file is one this
extension wrote, with a crr and change rows in it: loading the extension on a read-only
connection must not try to write, and reading must work.
"""

from harness import changes, close, connect


def test_can_load_as_readonly(tmp_path):
    path = tmp_path / "prior.db"
    c = connect(f"file:{path}", uri=True)
    c.execute("CREATE TABLE foo (a PRIMARY KEY NOT NULL, b)")
    c.execute("SELECT crsql_as_crr('foo')")
    c.execute("INSERT INTO foo VALUES (1, 'one')")
    c.commit()
    written = changes(c)
    close(c)

    c = connect(f"file:{path}?mode=ro", uri=True)
    assert changes(c) == written
    close(c)
