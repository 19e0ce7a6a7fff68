"""Fault injection: bounded, local, and each test cleans up what it started."""

import time

import pytest
import requests
from django.conf import settings

from everruns.celery import RUN_TURN_TASK
from everruns.celery import app as celery_app
from sessions.models import Event, Message, Session, Turn
from tests import processes
from tests.conftest import wait_for
from tests.e2e.client import open_session, say
from tests.e2e.sse import Stream, turn_done
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import post_user

pytestmark = [pytest.mark.e2e, pytest.mark.fault]
FAULT_QUEUE = f"faults-{settings.RUN_ID}"
WORKER_ENV = {"CELERY_QUEUE": FAULT_QUEUE, "TURN_LEASE_SECONDS": 3, "TURN_SWEEP_SECONDS": 1}


def test_a_worker_killed_mid_turn_loses_nothing(seeded_tx, log_dir):
    slow = make_model(model_id="llmsim-slow-kill", settings={"latency_ms": 4000})
    session = make_session(make_agent(), model_id=slow.pk)
    post_user(session, "What is 4 + 4?")
    turn = Turn.objects.get(session=session)
    first = processes.start_worker(log_dir, name="doomed", **WORKER_ENV)
    second = None
    try:
        celery_app.send_task(RUN_TURN_TASK, args=[str(turn.pk)], queue=FAULT_QUEUE)
        wait_for(lambda: Event.objects.filter(session=session, type="llm.started").exists(), 30, message="llm.started")
        first.kill()  # SIGKILL, mid LLM call
        assert Session.objects.get(pk=session.pk).status == "running"
        second = processes.start_worker(log_dir, name="rescuer", **WORKER_ENV)
        wait_for(lambda: Session.objects.get(pk=session.pk).status == "pending", 60, message="turn taken over")
    finally:
        first.kill()
        if second:
            second.kill()
    turn.refresh_from_db()
    assert turn.status == "completed"
    assistant = Message.objects.filter(session=session, role="assistant")
    assert assistant.count() == 1 and "4 + 4 = 8" in assistant.get().content[0]["text"]
    types = list(Event.objects.filter(session=session).order_by("sequence").values_list("type", flat=True))
    assert types.count("turn.started") == 1 and types.count("turn.completed") == 1
    assert types.count("llm.started") == 2  # the abandoned call, then the one that answered
    sequences = list(Event.objects.filter(session=session).order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))


@pytest.fixture
def own_redis(log_dir):
    """A Redis of this test's own: the test restarts it, the machine's Redis is never touched."""
    server = processes.RedisServer(log_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_stack(seeded_tx, own_redis, log_dir):
    """A web and a worker process of their own, on `own_redis`. Returns (base URL, worker)."""
    worker = processes.start_worker(log_dir, name="redis-fault", REDIS_URL=own_redis.url, **processes.WORKER_ENV)
    web = None
    try:
        web, url = processes.start_web(log_dir, REDIS_URL=own_redis.url, **processes.WEB_ENV)
        yield url, worker
    finally:
        worker.stop()
        if web:
            web.stop()


def redis_restart(server: processes.RedisServer, down_seconds: float = 8.0) -> None:
    """Stop the test's Redis and start it again on the same port. Down long enough to outlast
    redis-py's own reconnect retries, so only our reconnecting listener can bring live delivery back."""
    server.stop()
    time.sleep(down_seconds)
    server.start()


def test_a_redis_restart_mid_turn_loses_no_turn_and_no_event(redis_stack, own_redis):
    url, worker = redis_stack
    slow = make_model(model_id="llmsim-slow-redis", settings={"latency_ms": 10000})
    path = open_session(url, session={"model_id": str(slow.pk)})
    stream = Stream(f"{path}/events", timeout=90)
    try:
        say(path, "before")
        stream.read_until(lambda e: e["event"] == "llm.started")
        redis_restart(own_redis)  # while the worker is in the middle of the turn
        restarted_at = len(stream.events)
        stream.read_until(turn_done)
        assert worker.popen.poll() is None, "the worker must survive a Redis restart"
        after_restart = [e["event"] for e in stream.events[restarted_at:]]
        assert "message.delta" in after_restart, "live delivery must come back after a Redis restart"
        response = say(path, "after")
        assert response.status_code == 201
        stream.read_until(lambda e: turn_done(e) and e["data"]["sequence"] > 8)
    finally:
        stream.close()
    sequences = [e["data"]["sequence"] for e in stream.stored()]
    assert sequences == list(range(1, 17))
    assert requests.get(path).json()["status"] == "pending"
    roles = [m["role"] for m in requests.get(f"{path}/messages").json()["items"]]
    assert roles == ["user", "assistant", "user", "assistant"]
