"""A local insert into a crr: its clock rows, db_version, and the stored values."""

from harness import connect, expect_upstream, intended_difference, without


@intended_difference("no-pks-table")
def test_c1_c2_c3_c4_c6_c7_crr_values():
    c = connect()
    before = c.execute("SELECT crsql_db_version()").fetchone()[0]
    c.execute("CREATE TABLE foo (id PRIMARY KEY NOT NULL, a)")
    c.execute("SELECT crsql_as_crr('foo')")
    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.commit()

    assert c.execute("SELECT crsql_db_version()").fetchone()[0] == before + 1
    assert len(c.execute("SELECT * FROM foo__crsql_clock").fetchall()) == 1
    assert c.execute("SELECT id, a FROM foo").fetchone() == (1, 2)
    # One clock row: column a at col_version 1, the next db_version, this site (ordinal 0).
    clock = c.execute("SELECT key, col_name, col_version, db_version, site_id FROM foo__crsql_clock").fetchall()
    want = [(1, "a", 1, before + 1, 0)]
    assert without(clock, 0) == without(want, 0)
    # cr-sqlite's clock key is the row's foo__crsql_pks integer (1); synqlite's is the packed
    # primary key.
    expect_upstream(clock, want, "no-pks-table")
