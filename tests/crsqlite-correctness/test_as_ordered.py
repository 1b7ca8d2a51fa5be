"""cr-sqlite's fractional-indexing helpers (`crsql_fract_as_ordered`, `<t>_fractindex` views).

Not applicable: synqlite implements cr-sqlite's replication, not its list-ordering helpers, so
there is no `crsql_fract_*` function. Each upstream case is listed so the README's table and
pytest's report stay case for case.
"""

import pytest

pytestmark = pytest.mark.skip(
    reason="not applicable: fractional indexing (crsql_fract_as_ordered, <t>_fractindex) is not part of synqlite"
)


def test_first_insertion_prepend():
    """Upstream: the first row inserted with position -1 gets order key 'a '."""


def test_first_insertion_append():
    """Upstream: the first row inserted with position 1 gets order key 'a '."""


def test_middle_insertion():
    """Upstream: inserting through the view after row 1 places the row between 1 and 3."""


def test_front_insertion():
    """Upstream: inserting through the view with no predecessor puts the row first ('Z~')."""


def test_endinsertion():
    """Upstream: inserting through the view after the last row appends ('a\"')."""


def test_view_first_insertion():
    """Upstream: the first row inserted through the view gets 'a '."""


def test_view_move():
    """Upstream: updating after_a in the view moves a row between two others."""
