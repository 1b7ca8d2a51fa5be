"""cr-sqlite's `<table>__crsql_pks` lookaside: one stable integer key per primary key, made on
insert (plain, OR REPLACE, OR IGNORE, ON CONFLICT), update, delete and merge.

Not applicable: synqlite has no lookaside table; a clock row's `key` is the packed primary key
itself, which is stable by construction (the same primary key always packs to the same bytes).
Each upstream case is listed so the README's table and pytest's report stay case for case.
"""

import pytest

pytestmark = pytest.mark.skip(
    reason="not applicable: synqlite has no <table>__crsql_pks lookaside (clock rows are keyed by the packed primary key)"
)


def test_insert():
    """Upstream: an insert creates lookaside row (1, pk) for a single and a composite key."""


def test_insert_or_replace():
    """Upstream: repeated INSERT OR REPLACE keeps the same lookaside key."""


def test_insert_or_ignore():
    """Upstream: repeated INSERT OR IGNORE keeps the same lookaside key."""


def test_insert_on_conflict_update():
    """Upstream: repeated upserts keep the same lookaside key."""


def test_update():
    """Upstream: updates keep the key; a primary-key change adds a key and keeps the old one."""


def test_delete():
    """Upstream: a delete keeps the lookaside row (its sentinel still needs it)."""


def test_delete_all():
    """Upstream: DELETE without WHERE keeps the lookaside rows."""


def test_merge_new_row():
    """Upstream: merging a new row creates its lookaside key."""


def test_merge_existing_row():
    """Upstream: merging into an existing row creates no new key."""


def test_merge_delete_new_row():
    """Upstream: merging a delete of an unseen row creates its key."""


def test_merge_delete_existing_row():
    """Upstream: merging a delete of an existing row keeps its key."""


def test_merge_update_existing_row():
    """Upstream: merging a composite-key row's changes adds keys for keys not seen before."""
