"""An exploratory two-peer exchange (insert, sync, delete, insert, sync both ways).

Upstream only runs the steps; here the two databases must also end with the same rows.
"""

from harness import ALL_COLUMNS, apply_rows, connect


def send(src, dst, since):
    rows = src.execute(
        f"SELECT {ALL_COLUMNS} FROM crsql_changes WHERE db_version > ? ORDER BY db_version, seq", (since,)
    ).fetchall()
    apply_rows(dst, rows)
    return rows[-1][5] if rows else 0


def test_sync():
    def open_peer():
        c = connect()
        c.execute(
            "CREATE TABLE item (id PRIMARY KEY NOT NULL, width INTEGER, height INTEGER, name TEXT, "
            "dscription TEXT, weight INTEGER)"
        )
        c.execute("SELECT crsql_as_crr('item')")
        c.commit()
        return c

    def add(c, item_id):
        c.execute("INSERT INTO item VALUES (?, NULL, NULL, NULL, NULL, NULL)", (item_id,))
        c.commit()

    a, b = open_peer(), open_peer()
    first, other, later = (
        "9838abbe-6fa8-4755-af2b-9f0484888809",
        "f94ef174-459f-4b07-bc7a-c1104a97ceb5",
        "d5653f10-b858-46c7-97e5-5660eca47d28",
    )
    add(a, first)
    add(b, other)
    seen = send(a, b, 0)

    a.execute("DELETE FROM item WHERE id = ?", (first,))
    a.commit()
    add(a, later)
    send(a, b, seen)
    send(b, a, 0)

    rows = "SELECT * FROM item ORDER BY id"
    assert a.execute(rows).fetchall() == b.execute(rows).fetchall()
    assert [r[0] for r in a.execute(rows)] == sorted([other, later])
