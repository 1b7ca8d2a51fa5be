"""Random single-table write histories for the property tests (test_cl_merging, test_sync_prop).

A history is a list of steps on `item (id PRIMARY KEY, width, height, name, description,
weight)`: INSERT of a fresh UUID id with some columns set, UPDATE of at least one column, or
DELETE; UPDATE and DELETE hit the smallest live id. Column values are 32-bit integers or text
(upstream leaves REAL out too). All randomness is drawn from Hypothesis, so a derandomized run
replays the same histories.
"""

from hypothesis import strategies as st

from harness import connect

INSERT, UPDATE, DELETE = 0, 1, 2
INT32 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x27BF))
#: item's non-pk columns and what each holds (REAL is left out, as upstream does).
ITEM_COLUMNS = (("width", INT32), ("height", INT32), ("name", TEXT), ("description", TEXT), ("weight", INT32))
ITEM_SCHEMA = (
    "CREATE TABLE item (id PRIMARY KEY NOT NULL, width INTEGER, height INTEGER, name TEXT, "
    "description TEXT, weight INTEGER)"
)


@st.composite
def step(draw):
    """One write: INSERT (a fresh id, some columns), UPDATE (at least one column) or DELETE."""
    op = draw(st.integers(INSERT, DELETE))
    chosen = [draw(st.booleans()) for _ in ITEM_COLUMNS]
    if op == DELETE:
        return (DELETE,)
    if op == UPDATE and not any(chosen):
        chosen[0] = True
    values = {name: draw(strategy) for (name, strategy), on in zip(ITEM_COLUMNS, chosen) if on}
    if op == INSERT:
        return (INSERT, str(draw(st.uuids())), values)
    return (UPDATE, values)


def script(max_steps=250):
    """A history of up to `max_steps` steps."""
    return st.lists(step(), max_size=max_steps)


def item_db():
    c = connect()
    c.execute(ITEM_SCHEMA)
    c.execute("SELECT crsql_as_crr('item')")
    c.commit()
    return c


def apply_step(c, s):
    """Runs one step in its own transaction; UPDATE and DELETE hit the smallest live id."""
    if s[0] == INSERT:
        names = ["id", *s[2]]
        c.execute(
            f"INSERT INTO item ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            (s[1], *s[2].values()),
        )
    else:
        first = c.execute("SELECT id FROM item ORDER BY id LIMIT 1").fetchone()
        if first is None:
            return
        if s[0] == UPDATE:
            sets = ", ".join(f"{n} = ?" for n in s[1])
            c.execute(f"UPDATE item SET {sets} WHERE id = ?", (*s[1].values(), first[0]))
        else:
            c.execute("DELETE FROM item WHERE id = ?", first)
    c.commit()


def items(c):
    return c.execute("SELECT * FROM item ORDER BY id").fetchall()


