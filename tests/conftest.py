import time

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from agents.mcp import services as mcp_services
from agents.models import LlmModel, LlmProvider
from agents.seed import seed
from everruns.mcp.client import McpUnavailable
from runner.runtime import runtime
from tests import processes
from tests.factories import make_model
from tests.fake_llm_server import FakeLLM


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def delete_run_keys(client: redis.Redis) -> None:
    """Delete what this run left in Redis: its queues and their bindings (all named by the run id)."""
    for key in client.scan_iter(match=f"*{settings.RUN_ID}*"):
        client.delete(key)


@pytest.fixture(scope="session")
def _clean_broker():
    """The run's queues are its own (named by the run id): empty them before (an aborted run with the
    same id) and when the run ends. Only tests that reach Redis use it (see django_db_setup)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    delete_run_keys(client)
    yield
    delete_run_keys(client)
    client.close()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, _clean_broker):
    """pytest-django's test database, plus the broker cleanup: every test that can queue a turn (an
    in-process test posting a message, the worker and web processes) uses the database, and unit
    tests use neither."""
    yield


@pytest.fixture
def seeded(db):
    seed(LlmProvider, LlmModel)


@pytest.fixture
def seeded_tx(transactional_db):
    seed(LlmProvider, LlmModel)


@pytest.fixture(scope="session")
def runtime_connections(django_db_setup, django_db_blocker):
    """For tests that run turns in this process: those run on the runtime's database threads, whose
    connections stay open; close them before the test database is dropped (or it is left behind)."""
    yield
    with django_db_blocker.unblock():
        runtime().close_connections()


@pytest.fixture
def api(seeded):
    return APIClient()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("procs")


@pytest.fixture(scope="session")
def worker(django_db_setup, django_db_blocker, log_dir):
    """One real Celery worker process for the test session."""
    proc = processes.start_worker(log_dir, **processes.WORKER_ENV)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def web(django_db_setup, log_dir):
    """One real uvicorn process for the test session; returns its base URL."""
    proc, url = processes.start_web(log_dir, **processes.WEB_ENV)
    yield url
    proc.stop()


@pytest.fixture
def stack(seeded_tx, worker, web):
    """The production shape, live: web + worker on PostgreSQL and Redis. Returns the base URL."""
    return web


@pytest.fixture(scope="session")
def fake_llm_server():

    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server):
    """The fake OpenAI-compatible server with an empty script and no recorded requests."""
    fake_llm_server.script.clear()
    fake_llm_server.requests.clear()
    fake_llm_server.headers.clear()
    fake_llm_server.max_context_chars = fake_llm_server.respond = None
    return fake_llm_server


@pytest.fixture
def fake_model(fake_llm):
    """An `openai_compatible` model pointed at the fake server (litellm's real openai/ HTTP path)."""

    return make_model(provider_type="openai_compatible", model_id="fake-model", base_url=fake_llm.base_url)


@pytest.fixture
def mcp_contained(monkeypatch):
    """Fuzzed MCP server URLs are saved but never contacted: listing a server's tools from a URL the test did not
    start would send traffic off this machine. Tests add the URLs of their own servers to the returned set."""

    ours: set[str] = set()
    real = mcp_services.list_tools

    def list_tools(config):
        if config.url not in ours:
            raise McpUnavailable("not contacted: a test reaches only the MCP servers it started")
        return real(config)

    monkeypatch.setattr(mcp_services, "list_tools", list_tools)
    return ours
