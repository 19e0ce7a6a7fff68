"""Unit tests: pure functions, no PostgreSQL and no Redis.

pytest-django still configures settings (no database is created unless a test asks for one), and
pytest-django refuses database access to tests without a database fixture. This guard also refuses,
at collection, a unit test that asks for a fixture reaching a service, so the rule holds under
`make test` too, not only under `make test-unit` (which points both services at a closed port).
A run of unit tests alone must not import litellm either (~5 s of a run that should take seconds).
"""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SERVICE_FIXTURES = {"django_db_setup", "_clean_broker"}


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE not in Path(item.path).resolve().parents:
            continue
        used = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used:
            raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {sorted(used)} (a service)")


def pytest_sessionfinish(session, exitstatus):
    items = getattr(session, "items", [])
    only_units = items and all(HERE in Path(item.path).resolve().parents for item in items)
    if only_units and "litellm" in sys.modules:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nunit tests imported litellm (they must stay seconds): move that test out", file=sys.stderr)
