"""Shared helpers of the cr-sqlite correctness suite run against synqlite's loadable extension.

- `connect` / `close`: a `sqlite3` connection with the extension loaded (path from the
  `SYNQLITE_CRSQLITE_EXT` environment variable), closed after `SELECT crsql_finalize()`.
  Every connection opened here is remembered so the `conftest.py` fixture can close the ones
  a test left open.
- `site_id`, `pk`: this database's site id; a primary key packed as `crsql_changes.pk` carries it.
- `sync` and friends: the ways the upstream cases move change rows between databases, all
  through `SELECT ... FROM crsql_changes` and `INSERT INTO crsql_changes`.
- `clock_key`: the `key` a clock row of a given primary key has: the packed primary key in
  synqlite, the `<table>__crsql_pks` integer in cr-sqlite.
- Intended differences: a test whose upstream expectation synqlite does not meet on purpose
  is decorated with `@intended_difference(KEY)`. It first asserts, with plain `assert`, every
  part of the expectation that does not depend on the difference (a failure there is a real
  failure), then calls `expect_upstream(actual, expected, KEY)` for the part that does; that
  raises `IntendedDifference`, the only exception the strict xfail accepts (`Upstream` does the
  same for tests that compare several steps: each step's spared part is asserted at once, the
  documented part is settled at the end, so every step runs). So the suite stays
  green, any other failure still fails, and an unexpected pass (synqlite now matching
  cr-sqlite) fails the run as XPASS(strict).
- `SYNQLITE_CRSQLITE_REFERENCE=1` (with `SYNQLITE_CRSQLITE_EXT` naming a build of cr-sqlite
  0.16.3 itself, see `reference`): the intended-difference marks are off, so every applicable
  case must pass as written, which checks the expectations against upstream's behaviour.
"""

import os
import sqlite3
import struct

import pytest

ENV_EXTENSION = "SYNQLITE_CRSQLITE_EXT"
ENV_REFERENCE = "SYNQLITE_CRSQLITE_REFERENCE"
#: Running against cr-sqlite itself: no intended differences apply.
REFERENCE = os.environ.get(ENV_REFERENCE) == "1"

#: Why synqlite's results differ from cr-sqlite 0.16.3's in a documented way. The README's
#: table names the same keys.
DIFFERENCES = {
    "merge-seq": (
        "merged change rows get fresh local seq numbers (in the receiver's transaction); "
        "cr-sqlite keeps the seq the row had on its writer"
    ),
    "pk-change": (
        "a primary-key change re-records the row's columns under the new key with a new "
        "db_version/seq; cr-sqlite moves the old clocks without re-stamping them"
    ),
    "no-pks-table": (
        "synqlite keys clock rows by the packed primary key and has no <table>__crsql_pks "
        "lookaside table"
    ),
}


class IntendedDifference(AssertionError):
    """Raised by `expect_upstream` when synqlite differs from cr-sqlite as documented."""


def intended_difference(key):
    """Marks a test as failing on purpose, only through `expect_upstream(..., key)`."""
    if REFERENCE:
        return pytest.mark.reference_passes
    return pytest.mark.xfail(
        raises=IntendedDifference, strict=True, reason=f"intended difference [{key}]: {DIFFERENCES[key]}"
    )


def expect_upstream(actual, expected, key):
    """Asserts cr-sqlite's exact expectation; a mismatch is the documented difference `key`."""
    if actual != expected:
        raise IntendedDifference(
            f"[{key}] {DIFFERENCES[key]}\n  synqlite:  {actual!r}\n  cr-sqlite: {expected!r}"
        )


class Upstream:
    """Compares results with cr-sqlite's where the documented difference `key` applies.

    `check` asserts at once that `actual` equals `expected` with the columns at `ignore` left out
    (and, with `unordered`, in any order: a difference in seq also changes the (db_version, seq)
    order); it remembers whether they are also equal in full. `settle` raises
    `IntendedDifference` if any full comparison differed.
    """

    def __init__(self, key):
        self.key = key
        self.mismatches = []

    def check(self, actual, expected, ignore=(), unordered=False):
        spared_actual, spared_expected = without(actual, *ignore), without(expected, *ignore)
        if unordered:
            spared_actual, spared_expected = sorted(spared_actual, key=repr), sorted(spared_expected, key=repr)
        assert spared_actual == spared_expected
        if actual != expected:
            self.mismatches.append((actual, expected))

    def settle(self):
        if self.mismatches:
            actual, expected = zip(*self.mismatches)
            expect_upstream(list(actual), list(expected), self.key)


def extension_path():
    path = os.environ.get(ENV_EXTENSION)
    if not path:
        raise RuntimeError(
            f"{ENV_EXTENSION} is not set: point it at the built libcrsqlite.so "
            "(tests/crsqlite-correctness/run does this)"
        )
    return path


_open = []


def connect(target=":memory:", uri=False):
    """Opens `target` with the extension loaded (as cr-sqlite's own harness does)."""
    conn = sqlite3.connect(target, uri=uri)
    conn.enable_load_extension(True)
    conn.load_extension(extension_path())
    conn.enable_load_extension(False)
    _open.append(conn)
    return conn


def close(conn):
    """`SELECT crsql_finalize()`, then close; does nothing for a connection already closed."""
    if conn in _open:
        _open.remove(conn)
        conn.execute("SELECT crsql_finalize()")
        conn.close()


def close_all():
    """Closes every connection `connect` opened and nobody closed (the fixture's teardown)."""
    while _open:
        close(_open[-1])


def forget(conn):
    """Closes without finalizing, as a process that exits or crashes would."""
    if conn in _open:
        _open.remove(conn)
    conn.close()


def site_id(conn):
    return conn.execute("SELECT crsql_site_id()").fetchone()[0]


def db_version(conn):
    return conn.execute("SELECT crsql_db_version()").fetchone()[0]


def pk(*values):
    """A primary key packed as cr-sqlite packs it (`crsql_pack_columns`), for integers and text."""
    out = bytearray([len(values)])
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise TypeError(f"pk(): only int and str are packed here, not {v!r}")
        if isinstance(v, str):
            data = v.encode()
            n = (len(data).bit_length() + 7) // 8
            out.append((n << 3) | 3)
            out += len(data).to_bytes(n, "big") + data
        elif v < 0:
            out.append((8 << 3) | 1)
            out += struct.pack(">q", v)
        else:
            n = (v.bit_length() + 7) // 8
            out.append((n << 3) | 1)
            out += v.to_bytes(n, "big")
    return bytes(out)


def clock_key(conn, table, **pk_values):
    """The `key` column of `table`'s clock rows for the row with primary key `pk_values`."""
    lookaside = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (f"{table}__crsql_pks",)
    ).fetchone()
    if lookaside is None:
        return pk(*pk_values.values())
    where = " AND ".join(f'"{name}" = ?' for name in pk_values)
    row = conn.execute(f'SELECT __crsql_key FROM "{table}__crsql_pks" WHERE {where}', tuple(pk_values.values())).fetchone()
    if row is None:
        raise LookupError(f"{table}__crsql_pks has no key for {pk_values}")
    return row[0]


INSERT_CHANGE = "INSERT INTO crsql_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
ALL_COLUMNS = '"table", pk, cid, val, col_version, db_version, site_id, cl, seq'


def apply_rows(dst, rows):
    """Inserts change rows into `dst`'s crsql_changes, all in one transaction, then commits."""
    for row in rows:
        dst.execute(INSERT_CHANGE, tuple(row))
    dst.commit()


def sync(src, dst, since=0, order=False):
    """Moves `src`'s changes with db_version > since into `dst`; returns the last db_version seen."""
    sql = f"SELECT {ALL_COLUMNS} FROM crsql_changes WHERE db_version > ?"
    if order:
        sql += " ORDER BY db_version, seq"
    rows = src.execute(sql, (since,)).fetchall()
    apply_rows(dst, rows)
    return rows[-1][5] if rows else 0


def sync_version(src, dst, version, skip_own=True):
    """Moves the changes of exactly one db_version of `src` (not those that came from `dst`)."""
    if skip_own:
        rows = src.execute(
            f"SELECT {ALL_COLUMNS} FROM crsql_changes WHERE db_version = ? AND site_id IS NOT ?",
            (version, site_id(dst)),
        ).fetchall()
    else:
        rows = src.execute(
            f"SELECT {ALL_COLUMNS} FROM crsql_changes WHERE db_version = ?", (version,)
        ).fetchall()
    apply_rows(dst, rows)


def sync_delta(src, dst, since):
    """Delta-state sync: changes after `since` that `dst` did not make; returns the new cursor."""
    rows = src.execute(
        f"SELECT {ALL_COLUMNS} FROM crsql_changes WHERE db_version > ? AND site_id IS NOT ? "
        "ORDER BY db_version, seq",
        (since, site_id(dst)),
    ).fetchall()
    apply_rows(dst, rows)
    return max([since] + [r[5] for r in rows])


def changes(conn, columns=ALL_COLUMNS, where=""):
    return conn.execute(f"SELECT {columns} FROM crsql_changes {where}").fetchall()


def without(rows, *indexes):
    """The rows with the columns at `indexes` left out (to compare what a difference spares)."""
    return [tuple(v for i, v in enumerate(r) if i not in indexes) for r in rows]


#: Column positions in a full change row.
TABLE, PK, CID, VAL, COL_VERSION, DB_VERSION, SITE_ID, CL, SEQ = range(9)
