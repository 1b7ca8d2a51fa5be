"""This database's site id: a 16-byte UUID, also in crsql_site_id, kept across reopens, on
every local change, and carried unchanged through merges (also relayed by a third peer).
"""

from uuid import UUID

from harness import ALL_COLUMNS, apply_rows, connect, forget, site_id


def test_c1():
    c = connect()
    raw = site_id(c)
    assert isinstance(raw, bytes) and len(raw) == 16
    assert UUID(bytes=raw).bytes == raw


def test_c2():
    c = connect()
    assert site_id(c) == c.execute("SELECT site_id FROM crsql_site_id").fetchone()[0]


def test_c3c4(tmp_path):
    path = str(tmp_path / "siteid_c3c4.db")
    c = connect(path)
    first = site_id(c)
    forget(c)
    c = connect(path)
    assert site_id(c) == first


def test_site_id_for_local_writes():
    c = connect()
    c.execute("CREATE TABLE foo (id NOT NULL, x, y, PRIMARY KEY (id))")
    c.execute("SELECT crsql_as_crr('foo')")
    c.commit()
    c.execute("INSERT INTO foo VALUES (1, 2, 3)")
    c.commit()

    def all_local():
        total = c.execute("SELECT count(*) FROM crsql_changes").fetchone()[0]
        local = c.execute("SELECT count(*) FROM crsql_changes WHERE site_id = crsql_site_id()").fetchone()[0]
        assert total > 0 and total == local

    for sql in ("UPDATE foo SET x = 3 WHERE id = 1", "INSERT OR REPLACE INTO foo VALUES (1, 5, 9)", "DELETE FROM foo"):
        c.execute(sql)
        c.commit()
        all_local()


def test_site_id_from_merge():
    def peer():
        p = connect()
        p.execute("CREATE TABLE foo (a PRIMARY KEY NOT NULL, b)")
        p.commit()
        p.execute("SELECT crsql_as_crr('foo')")
        p.commit()
        return p

    def pull(src, dst):
        rows = src.execute(
            f"SELECT {ALL_COLUMNS} FROM crsql_changes WHERE db_version > 0 AND site_id IS NOT ?", (site_id(dst),)
        ).fetchall()
        apply_rows(dst, rows)

    a = peer()
    a.execute("INSERT INTO foo VALUES (1, 2.0e2)")
    a.commit()
    a.execute("INSERT INTO foo VALUES (2, X'1232')")
    a.commit()
    b, c = peer(), peer()
    pull(a, b)
    pull(b, c)

    q = "SELECT site_id FROM crsql_changes ORDER BY pk"
    from_a = a.execute(q).fetchall()
    assert from_a == [(site_id(a),)] * 2
    assert b.execute(q).fetchall() == from_a
    assert c.execute(q).fetchall() == from_a
