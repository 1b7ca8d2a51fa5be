"""pytest setup of the cr-sqlite correctness suite.

- Refuses to run without the extension (`SYNQLITE_CRSQLITE_EXT`), or on a Python whose
  `sqlite3` cannot load extensions (the pyenv builds; use Debian's /usr/bin/python3).
- Every test gets `close_connections` (autouse): connections opened through `harness.connect`
  and left open are finalized (`SELECT crsql_finalize()`) and closed after the test.
- Hypothesis profiles: `ci` (default) is deterministic (`derandomize`, no example database,
  fixed `max_examples`) so a run is reproducible; `deep` (SYNQLITE_HYPOTHESIS_PROFILE=deep)
  draws more and random examples, with the seed printed by Hypothesis on failure.
"""

import os
import sqlite3

import pytest
from hypothesis import HealthCheck, settings

import harness

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    max_examples=300,
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("SYNQLITE_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def pytest_configure(config):
    path = os.environ.get(harness.ENV_EXTENSION)
    if not path:
        raise pytest.UsageError(
            f"{harness.ENV_EXTENSION} is not set: run tests/crsqlite-correctness/run, or point it "
            "at the built libcrsqlite.so"
        )
    if not os.path.isfile(path):
        raise pytest.UsageError(f"{harness.ENV_EXTENSION}={path}: no such file")
    probe = sqlite3.connect(":memory:")
    if not hasattr(probe, "enable_load_extension"):
        raise pytest.UsageError(
            "this Python's sqlite3 cannot load extensions: use Debian's /usr/bin/python3"
        )
    probe.close()


def pytest_report_header(config):
    return [
        f"extension: {os.environ.get(harness.ENV_EXTENSION)}",
        f"host sqlite: {sqlite3.sqlite_version}",
        f"hypothesis profile: {PROFILE} ({settings().max_examples} examples, "
        f"derandomize={settings().derandomize})",
    ]


@pytest.fixture(autouse=True)
def close_connections():
    yield
    harness.close_all()
