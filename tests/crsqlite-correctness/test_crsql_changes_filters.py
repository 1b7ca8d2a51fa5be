"""WHERE constraints on crsql_changes' columns (<, >, =, !=, IS, IS NOT): the virtual table must
return exactly the rows that filtering all its rows by hand returns, in (db_version, seq) order.
"""

from harness import close, connect, pk

COLUMNS = ("table", "pk", "cid", "val", "col_version", "db_version", "site_id", "seq")
SELECT = "SELECT " + ", ".join(f'"{c}"' for c in COLUMNS) + " FROM crsql_changes"
ORDER = " ORDER BY db_version, seq"


def _lt(x, y):
    return x is not None and y is not None and x < y


def _gt(x, y):
    return x is not None and y is not None and x > y


def _eq(x, y):
    return x is not None and y is not None and x == y


def _ne(x, y):
    return x is not None and y is not None and x != y


# SQL's operators with SQL's NULL rules, for the values these tests compare (integers against
# integers; bytes or text against another type are never equal).
OPERATORS = {
    "<": _lt,
    ">": _gt,
    "=": _eq,
    "!=": _ne,
    "IS": lambda x, y: x == y,
    "IS NOT": lambda x, y: x != y,
}


def history():
    """Inserts, an update, a delete over three transactions and more; returns (db, all rows)."""
    c = connect()
    c.execute("CREATE TABLE item (id PRIMARY KEY NOT NULL, x INTEGER, y INTEGER, desc TEXT)")
    c.execute("SELECT crsql_as_crr('item')")
    c.commit()
    c.execute("INSERT INTO item VALUES (123, 0, 0, 'The bestest thing')")
    c.execute("INSERT INTO item VALUES (321, 10, 10, 'The okest thing')")
    c.commit()
    c.execute("UPDATE item SET x = 1000 WHERE id = 123")
    c.execute("INSERT INTO item VALUES (411, -1, -1, 'The worst thing')")
    c.commit()
    c.execute("DELETE FROM item WHERE id = 411")
    c.commit()
    return c, c.execute(SELECT + ORDER).fetchall()


def check(column, operators=OPERATORS, operands=range(5)):
    c, everything = history()
    if callable(operands):
        operands = operands(c)
    assert everything, "the history produced no change rows"
    i = COLUMNS.index(column)
    for x in operands:
        for op in operators:
            got = c.execute(f'{SELECT} WHERE "{column}" {op} ?{ORDER}', (x,)).fetchall()
            want = [r for r in everything if OPERATORS[op](r[i], x)]
            assert got == want, f'"{column}" {op} {x!r}'
    close(c)


def test_dbversion_filter():
    check("db_version")


def test_seq_filter():
    check("seq")


def test_cid_filter():
    check("cid", ("=", "!="))


def test_table_filter():
    check("table", ("=", "!="))


def test_col_version_filter():
    check("col_version")


def test_pk_filter():
    # Upstream's text operands never equal the packed (BLOB) keys: "=" finds nothing, "!="
    # everything. The packed keys are added here, so "=" must find each row's changes.
    check("pk", ("=", "!="), ["123", "321", "411", pk(123), pk(321), pk(411)])


def test_site_id_filter():
    # Upstream compares with NULL only; this database's own site id is added here.
    check(
        "site_id",
        ("=", "!=", "IS", "IS NOT"),
        lambda c: [None, c.execute("SELECT crsql_site_id()").fetchone()[0]],
    )
