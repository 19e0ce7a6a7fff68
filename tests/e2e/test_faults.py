"""Fault injection: bounded, local, and each test cleans up what it started."""

import re
import time

import pytest
import requests
from django.conf import settings

from everruns.celery import RUN_TURN_TASK
from everruns.celery import app as celery_app
from runner.compaction import prompt
from sessions.models import Event, Message, Session, Turn
from tests import processes
from tests.conftest import wait_for
from tests.e2e.client import open_session, say
from tests.e2e.sse import Stream, turn_done
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import long_message, post_user, run_active_turn

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


def test_a_worker_killed_during_the_compaction_call_resumes_with_one_compaction(
    seeded_tx, runtime_connections, log_dir, fake_llm
):
    model = make_model(provider_type="openai_compatible", model_id="fake-model", base_url=fake_llm.base_url)
    session = make_session(make_agent(system_prompt="Be brief."), model_id=model.pk)
    for i in range(1, 7):  # the window unknown so far: nothing compacts
        fake_llm.reply({"text": f"noted {i}"})
        post_user(session, long_message(i))
        assert run_active_turn(session).status == "completed"
    model.settings = {"context_window": 1200}  # now the next call is over the threshold: it compacts first
    model.save()
    summary_requests = []

    def respond(body):
        if not prompt.is_summary_request(body.get("messages") or []):
            return None
        summary_requests.append(time.monotonic())
        if len(summary_requests) == 1:
            return {"delay": 30, "text": "too late"}  # the worker is killed while it waits for this one
        return {"text": "Summary: invoices " + " ".join(re.findall(r"\d+", body["messages"][-1]["content"]))}

    fake_llm.respond = respond
    fake_llm.reply({"text": "the answer"})
    post_user(session, long_message(7))
    turn = Turn.objects.filter(session=session).order_by("-id").first()
    first = processes.start_worker(log_dir, name="doomed-compaction", **WORKER_ENV)
    second = None
    try:
        celery_app.send_task(RUN_TURN_TASK, args=[str(turn.pk)], queue=FAULT_QUEUE)
        wait_for(lambda: summary_requests, 60, message="the summary call")
        first.kill()  # SIGKILL, mid summary call
        second = processes.start_worker(log_dir, name="compaction-rescuer", **WORKER_ENV)
        wait_for(lambda: Session.objects.get(pk=session.pk).status == "pending", 90, message="turn taken over")
    finally:
        first.kill()
        if second:
            second.kill()
    turn.refresh_from_db()
    assert turn.status == "completed"
    types = list(Event.objects.filter(session=session, turn_id=turn.pk).values_list("type", flat=True))
    assert types.count("context.compacted") == 1 and types.count("llm.completed") == 1
    assert len(summary_requests) >= 2  # the dead worker's call, then the rescuer's
    assert Message.objects.filter(session=session, role="assistant").last().content[0]["text"] == "the answer"
    sequences = list(Event.objects.filter(session=session).order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
