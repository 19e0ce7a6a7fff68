"""A web process with its embedded worker (the quick start's shape), as a real uvicorn."""

import pytest
import requests

from tests import processes

pytestmark = pytest.mark.e2e


def test_the_embedded_worker_logs_its_broker_without_its_password(django_db_setup, log_dir):
    # A password in the broker URL (the suite's Redis has none and lets any through).
    broker = "redis://:hunter2@127.0.0.1:6379/15"
    proc, url = processes.start_web(log_dir, EVERRUNS_EMBEDDED_WORKER="true", REDIS_URL=broker)
    try:
        assert requests.get(f"{url}/health", timeout=5).status_code in (200, 503)
        output = proc.output()
        assert "embedded Celery worker started" in output and "redis://:***@127.0.0.1:6379/15" in output
        assert "hunter2" not in output
    finally:
        proc.stop()
