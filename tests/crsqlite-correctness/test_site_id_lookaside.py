"""Site ids of merged changes: stored as small ordinals in the clock tables (crsql_site_id maps
them; 0 is this database), returned as the 16-byte ids by crsql_changes, filterable, and an
id keeps its ordinal once given.
"""

from harness import connect

SITE = "1dc8d6bb7f8941088327d9439a7927a4"
OTHER = "2dc8d6bb7f8941088327d9439a7927a4"


def foo_db():
    c = connect()
    c.execute("CREATE TABLE foo (a INTEGER PRIMARY KEY NOT NULL, b INTEGER) STRICT")
    c.execute("SELECT crsql_as_crr('foo')")
    c.commit()
    return c


def merge_b(c, key, site):
    """Merges `b = 1` for integer key `key` (one byte) written by `site`."""
    c.execute(f"INSERT INTO crsql_changes VALUES ('foo', x'0109{key:02x}', 'b', 1, 1, 1, x'{site}', 1, 0)")
    c.commit()


def quoted(site):
    return f"X'{site.upper()}'"


def test_insert_site_id():
    a = foo_db()
    merge_b(a, 1, SITE)
    ordinal = a.execute("SELECT site_id FROM foo__crsql_clock").fetchone()[0]
    assert ordinal == 1
    assert a.execute("SELECT quote(site_id) FROM crsql_site_id WHERE ordinal = ?", (ordinal,)).fetchone()[0] == quoted(SITE)
    assert a.execute("SELECT quote(site_id) FROM crsql_changes").fetchone()[0] == quoted(SITE)


def test_site_id_filter():
    a = foo_db()
    merge_b(a, 1, SITE)
    got = a.execute(f"SELECT quote(site_id) FROM crsql_changes WHERE site_id = x'{SITE}'").fetchone()
    assert got == (quoted(SITE),)


def test_local_changes_have_local_site():
    a = foo_db()
    a.execute("INSERT INTO foo VALUES (2, 2)")
    a.execute("INSERT INTO foo VALUES (3, 2)")
    a.execute("INSERT INTO foo VALUES (4, 2)")
    a.commit()
    merge_b(a, 1, SITE)
    assert a.execute("SELECT count(*) FROM crsql_changes WHERE site_id IS crsql_site_id()").fetchone()[0] == 3
    assert a.execute("SELECT count(*) FROM crsql_changes").fetchone()[0] == 4


def test_site_id_ordinals_do_not_move_on_merge():
    a = foo_db()
    merge_b(a, 1, SITE)
    assert a.execute("SELECT quote(site_id) FROM crsql_changes").fetchall() == [(quoted(SITE),)]
    merge_b(a, 2, SITE)
    assert a.execute("SELECT quote(site_id) FROM crsql_changes").fetchall() == [(quoted(SITE),)] * 2
    merge_b(a, 3, OTHER)
    merge_b(a, 4, OTHER)
    # Two foreign ids, ordinals 1 and 2 in order of first sight.
    assert a.execute("SELECT quote(site_id), ordinal FROM crsql_site_id WHERE ordinal != 0").fetchall() == [
        (quoted(SITE), 1),
        (quoted(OTHER), 2),
    ]
