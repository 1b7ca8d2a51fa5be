"""db_version: starts at 0, one new value per committed transaction that writes a crr, kept in
the database file, untouched by rolled-back transactions.
"""

from harness import close, connect, db_version, forget

MIN_DB_VERSION = 0


def foo_crr(c):
    c.execute("CREATE TABLE foo (id PRIMARY KEY NOT NULL, a)")
    c.execute("SELECT crsql_as_crr('foo')")


def test_min_on_init():
    c = connect()
    assert db_version(c) == MIN_DB_VERSION


def test_increments_on_modification():
    c = connect()
    foo_crr(c)
    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.execute("COMMIT")
    # Creating the table and making it a crr took no version.
    assert db_version(c) == MIN_DB_VERSION + 1
    c.execute("UPDATE foo SET a = 3 WHERE id = 1")
    c.execute("COMMIT")
    assert db_version(c) == MIN_DB_VERSION + 2
    c.execute("DELETE FROM foo WHERE id = 1")
    c.execute("COMMIT")
    assert db_version(c) == MIN_DB_VERSION + 3
    close(c)


def test_db_version_restored_from_disk(tmp_path):
    path = str(tmp_path / "dbversion_c3.db")
    c = connect(path)
    assert db_version(c) == MIN_DB_VERSION

    # Reopen with a crr whose clock table is still empty (closed without crsql_finalize).
    foo_crr(c)
    forget(c)
    c = connect(path)
    assert db_version(c) == MIN_DB_VERSION

    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.commit()
    assert db_version(c) == MIN_DB_VERSION + 1

    # The version is read back from the clock tables on open.
    close(c)
    c = connect(path)
    assert db_version(c) == MIN_DB_VERSION + 1
    close(c)


def test_each_tx_gets_a_version():
    c = connect()
    foo_crr(c)
    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.execute("INSERT INTO foo VALUES (2, 2)")
    c.commit()
    assert db_version(c) == MIN_DB_VERSION + 1

    c.execute("INSERT INTO foo VALUES (3, 2)")
    c.execute("INSERT INTO foo VALUES (4, 2)")
    c.commit()
    assert db_version(c) == MIN_DB_VERSION + 2
    close(c)


def test_rollback_does_not_move_db_version():
    c = connect()
    foo_crr(c)

    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.execute("INSERT INTO foo VALUES (2, 2)")
    c.rollback()
    assert db_version(c) == MIN_DB_VERSION

    c.execute("INSERT INTO foo VALUES (3, 2)")
    c.execute("INSERT INTO foo VALUES (4, 2)")
    c.rollback()
    assert db_version(c) == MIN_DB_VERSION

    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.execute("INSERT INTO foo VALUES (2, 2)")
    c.commit()
    assert db_version(c) == MIN_DB_VERSION + 1

    c.execute("INSERT INTO foo VALUES (3, 2)")
    c.execute("INSERT INTO foo VALUES (4, 2)")
    c.commit()
    assert db_version(c) == MIN_DB_VERSION + 2
    close(c)
