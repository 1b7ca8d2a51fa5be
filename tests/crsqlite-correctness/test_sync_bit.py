"""Merged changes are written with the sync bit set: the crr's own triggers record nothing, a
user trigger can tell merges from local writes with crsql_internal_sync_bit(), and what was
merged reads back with the writer's versions, site id, causal length and seq.
"""

from harness import SEQ, Upstream, changes, connect, intended_difference

SITE = bytes.fromhex("1dc8d6bb7f8941088327d9439a7927a4")
FF = b"\xff" * 16


def foo_db():
    c = connect()
    c.execute("CREATE TABLE foo (a PRIMARY KEY NOT NULL, b)")
    c.execute("SELECT crsql_as_crr('foo')")
    c.commit()
    return c


def expect_written(actual, expected):
    upstream = Upstream("merge-seq")
    upstream.check(actual, expected, ignore=[SEQ])
    upstream.settle()


def merge(c, sql_values):
    c.execute(f"INSERT INTO crsql_changes VALUES {sql_values}")


@intended_difference("merge-seq")
def test_insert_row():
    c = foo_db()
    merge(c, f"('foo', x'010901', 'b', 1, 4, 4, x'{SITE.hex()}', 3, 6)")
    c.commit()
    # A row never seen, arriving in its third life through a column change: its sentinel and
    # the column both read back as written.
    expect_written(
        changes(c),
        [("foo", b"\x01\t\x01", "-1", None, 3, 4, SITE, 3, 6), ("foo", b"\x01\t\x01", "b", 1, 4, 4, SITE, 3, 6)],
    )


@intended_difference("merge-seq")
def test_update_row():
    c = foo_db()
    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.commit()
    merge(c, "('foo', x'010901', 'b', 1, 4, 4, x'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', 3, 6)")
    # Read inside the merging transaction: the longer life wins whole.
    expect_written(
        changes(c),
        [("foo", b"\x01\t\x01", "-1", None, 3, 4, FF, 3, 6), ("foo", b"\x01\t\x01", "b", 1, 4, 4, FF, 3, 6)],
    )


@intended_difference("merge-seq")
def test_delete_row():
    c = foo_db()
    c.execute("INSERT INTO foo VALUES (1, 2)")
    c.commit()
    merge(c, "('foo', x'010901', '-1', 1, 4, 4, x'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', 4, 6)")
    c.commit()
    expect_written(changes(c), [("foo", b"\x01\t\x01", "-1", None, 4, 4, FF, 4, 6)])


def test_custom_trigger():
    c = foo_db()
    c.execute("CREATE TABLE log (a INTEGER PRIMARY KEY, b)")
    c.execute(
        "CREATE TRIGGER log_up AFTER INSERT ON foo WHEN crsql_internal_sync_bit() = 0 "
        "BEGIN INSERT INTO log (b) VALUES (1); END"
    )
    c.commit()
    # A merge: the trigger that logs local writes only stays silent.
    merge(c, "('foo', x'010901', 'b', 1, 4, 4, x'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', 3, 6)")
    c.commit()
    assert c.execute("SELECT * FROM log").fetchall() == []
    assert c.execute("SELECT * FROM foo").fetchall() == [(1, 1)]

    c.execute("INSERT INTO foo VALUES (5, 5)")  # a local write is logged
    c.commit()
    assert c.execute("SELECT * FROM log").fetchall() == [(1, 1)]

    c.execute("DROP TRIGGER log_up")
    c.execute(
        "CREATE TRIGGER log_up AFTER INSERT ON foo WHEN crsql_internal_sync_bit() = 1 "
        "BEGIN INSERT INTO log (b) VALUES (1); END"
    )
    c.commit()
    # Now the trigger logs merges only: the merged insert of row 2 is logged.
    merge(c, "('foo', x'010902', 'b', 1, 4, 4, x'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', 3, 6)")
    assert c.execute("SELECT * FROM log").fetchall() == [(1, 1), (2, 1)]
