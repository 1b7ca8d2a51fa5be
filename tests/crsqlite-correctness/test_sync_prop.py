"""Property test: 2-5 peers write random histories and now and then pull what is new from
random other peers (delta-state sync, one cursor per pair); after a final round through peer 0
(everyone to 0, then 0 to everyone) all peers hold the same rows.
"""

from hypothesis import given
from hypothesis import strategies as st

from harness import ALL_COLUMNS, apply_rows, close
from histories import apply_step, item_db, items, step


@st.composite
def peers_and_scripts(draw):
    """(n, scripts): per peer a list of (write step, peers to pull from afterwards or [])."""
    n = draw(st.integers(2, 5))
    scripts = []
    for me in range(n):
        others = [p for p in range(n) if p != me]
        script = []
        for _ in range(draw(st.integers(0, 100))):
            s = draw(step())
            pulls = []
            if draw(st.integers(0, 10)) == 0:
                k = draw(st.integers(1, n))
                pulls = draw(st.lists(st.sampled_from(others), min_size=k, max_size=k))
            script.append((s, pulls))
        scripts.append(script)
    return n, scripts


def pull(src, dst, since):
    """Everything `src` has after `since`, in (db_version, seq) order; returns the new cursor."""
    rows = src.execute(
        f"SELECT {ALL_COLUMNS} FROM crsql_changes WHERE db_version > ? ORDER BY db_version, seq", (since,)
    ).fetchall()
    apply_rows(dst, rows)
    return rows[-1][5] if rows else since


@given(peers_and_scripts())
def test_delta_sync(plan):
    n, scripts = plan
    dbs = []
    try:
        for _ in range(n):
            dbs.append(item_db())
        # seen[dst][src]: the last db_version of src that dst pulled.
        seen = [dict() for _ in range(n)]

        for i in range(max(len(s) for s in scripts)):
            for me, script in enumerate(scripts):
                if i >= len(script):
                    continue
                write, pulls = script[i]
                apply_step(dbs[me], write)
                for src in pulls:
                    seen[me][src] = pull(dbs[src], dbs[me], seen[me].get(src, 0))

        for src in range(1, n):
            seen[0][src] = pull(dbs[src], dbs[0], seen[0].get(src, 0))
        for dst in range(1, n):
            pull(dbs[0], dbs[dst], seen[dst].get(0, 0))

        first = items(dbs[0])
        for other in dbs[1:]:
            assert items(other) == first
    finally:
        for c in dbs:
            close(c)
