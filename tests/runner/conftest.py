import pytest


@pytest.fixture(scope="session", autouse=True)
def _runtime_connections(runtime_connections):
    """Every test here may run turns in this process (see tests.conftest.runtime_connections)."""
