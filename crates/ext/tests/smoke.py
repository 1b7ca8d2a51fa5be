"""Loads the crsqlite extension into Python's sqlite3 and checks what cr-sqlite code relies on.

Usage: python3 smoke.py /path/to/libcrsqlite.so   (run by load.rs; exits non-zero on failure)
"""

import os
import sqlite3
import sys
import tempfile

EXT = sys.argv[1]
if EXT.endswith(".so"):
    EXT = EXT[: -len(".so")]  # as cr-sqlite users load it: SQLite adds the suffix


def connect(path=":memory:", **kw):
    c = sqlite3.connect(path, **kw)
    c.enable_load_extension(True)
    c.load_extension(EXT)
    return c


def changes(c, since=0):
    return c.execute(
        "SELECT \"table\", pk, cid, val, col_version, db_version, site_id, cl, seq "
        "FROM crsql_changes WHERE db_version > ?",
        (since,),
    ).fetchall()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# Functions, site id, versions, in Python's default mode (implicit transactions).
a = connect()
site_a = a.execute("SELECT crsql_site_id()").fetchone()[0]
check(isinstance(site_a, bytes) and len(site_a) == 16, "16-byte site id")
check(a.execute("SELECT crsql_db_version()").fetchone()[0] == 0, "db_version starts at 0")
a.execute("CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, x, y TEXT)")
check(a.execute("SELECT crsql_as_crr('t')").fetchone()[0] == "OK", "crsql_as_crr")
a.execute("INSERT INTO t VALUES (1, 1.5, 'one')")
a.execute("INSERT INTO t VALUES (2, x'00ff', 'two')")
a.commit()
check(a.execute("SELECT crsql_db_version()").fetchone()[0] == 1, "one transaction, one version")
a.execute("UPDATE t SET x = 7 WHERE id = 1")
a.commit()
rows = changes(a)
check(len(rows) == 4, f"4 change rows (x of row 1 rewritten), got {rows}")
check(all(r[6] == site_a for r in rows), "local rows carry the site id")
check([(r[5], r[8]) for r in rows] == [(1, 1), (1, 2), (1, 3), (2, 0)], "in (db_version, seq) order")
check(changes(a, 1) == [("t", b"\x01\x09\x01", "x", 7, 2, 2, site_a, 1, 0)], "db_version > 1")

# Autocommit: every statement is a transaction with its own version.
a.isolation_level = None
a.execute("INSERT INTO t VALUES (3, NULL, 'three')")
a.execute("DELETE FROM t WHERE id = 2")
check(a.execute("SELECT crsql_db_version()").fetchone()[0] == 4, "autocommit versions")
a.execute("BEGIN")
a.execute("INSERT INTO t VALUES (4, 4, 'four')")
a.execute("ROLLBACK")
check(a.execute("SELECT crsql_db_version()").fetchone()[0] == 4, "rollback keeps the version")
a.execute("INSERT INTO t VALUES (5, 5, 'five')")
check(a.execute("SELECT crsql_db_version()").fetchone()[0] == 5, "after a rollback")

# Merging through INSERT INTO crsql_changes, in one transaction, into a file database.
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "b.db")
    b = connect(path)
    b.execute("CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, x, y TEXT)")
    b.execute("SELECT crsql_as_crr('t')")
    b.commit()
    b.executemany("INSERT INTO crsql_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", changes(a))
    b.commit()
    check(
        b.execute("SELECT * FROM t ORDER BY id").fetchall()
        == a.execute("SELECT * FROM t ORDER BY id").fetchall(),
        "merged tables equal",
    )
    top = b.execute("SELECT crsql_db_version()").fetchone()[0]
    check(top == 5, f"merged version {top}")
    merged = changes(b)
    check({r[6] for r in merged} == {site_a}, "merged rows keep the writer's site id")
    # Re-applying changes nothing.
    b.executemany("INSERT INTO crsql_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", changes(a))
    b.commit()
    check(changes(b) == merged, "idempotent")
    # A second connection to the same file sees the first one's commits.
    b2 = connect(path)
    check(b2.execute("SELECT crsql_db_version()").fetchone()[0] == 5, "shared version")
    b.execute("INSERT INTO t VALUES (9, 9, 'nine')")
    b.commit()
    check(b2.execute("SELECT crsql_db_version()").fetchone()[0] == 6, "other connection's commit")
    b2.execute("INSERT INTO t VALUES (10, 10, 'ten')")
    b2.commit()
    check(b.execute("SELECT crsql_db_version()").fetchone()[0] == 7, "and back")
    # Errors are SQLite errors with cr-sqlite's messages.
    for sql, msg in [
        ("UPDATE crsql_changes SET val = 1", "Only INSERT and SELECT"),
        ("DELETE FROM crsql_changes", "Only INSERT and SELECT"),
        ("INSERT INTO crsql_changes VALUES ('nope', x'010901', 'x', 1, 1, 1, NULL, 1, 0)", "not a replicated table"),
        ("SELECT crsql_as_crr('missing')", "missing"),
    ]:
        try:
            b.execute(sql)
            raise AssertionError(f"{sql} should fail")
        except sqlite3.Error as e:
            check(msg in str(e), f"{sql}: {e}")
    b.rollback()
    check(b.execute("SELECT crsql_finalize()").fetchone()[0] is not None, "crsql_finalize")
    b.close()
    b2.close()

# The generic entry point, through SQL.
c = sqlite3.connect(":memory:")
c.enable_load_extension(True)
c.execute("SELECT load_extension(?, 'sqlite3_extension_init')", (EXT,))
check(len(c.execute("SELECT crsql_site_id()").fetchone()[0]) == 16, "sqlite3_extension_init")
c.close()
a.close()
print("ok")
