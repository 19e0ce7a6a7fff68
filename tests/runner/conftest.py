import pytest

from runner.runtime import runtime


@pytest.fixture(scope="session", autouse=True)
def _runtime_connections(django_db_setup, django_db_blocker):
    """In-process turns run on the runtime's database threads, whose connections stay open; close
    them before the test database is dropped."""
    yield
    with django_db_blocker.unblock():
        runtime().close_connections()
