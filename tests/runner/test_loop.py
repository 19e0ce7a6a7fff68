"""The loop in this process (real litellm + llmsim, real PostgreSQL), without Celery."""

import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from runner import llm
from runner.runtime import run_turn, runtime
from sessions import turns
from sessions.models import Event, Message, Session, Turn
from sessions.turns import turn_claim as claim
from tests.conftest import wait_for
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import event_types, messages, new_session, post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx")


def test_plain_turn_answers_and_returns_to_pending():
    session = new_session()
    post_user(session, "What is 2 + 2? Please explain your reasoning.")
    turn = run_active_turn(session)
    assert turn.status == "completed" and turn.iterations == 1
    session.refresh_from_db()
    assert session.status == "pending" and session.error is None and session.active_turn_id is None
    assert event_types(session) == [
        "message.user",
        "session.status",
        "turn.started",
        "llm.started",
        "llm.completed",
        "message.assistant",
        "turn.completed",
        "session.status",
    ]
    answer = messages(session)[-1]
    assert answer.role == "assistant" and "2 + 2 = 4" in answer.content[0]["text"]
    assert answer.metadata["model"] == "llmsim-1"
    assert answer.metadata["usage"]["input_tokens"] > 0 and answer.metadata["usage"]["output_tokens"] > 0
    assert session.input_tokens == answer.metadata["usage"]["input_tokens"]
    assert session.output_tokens == answer.metadata["usage"]["output_tokens"]
    assert session.cost_usd == 0.0
    statuses = [e.data for e in Event.objects.filter(session=session, type="session.status").order_by("sequence")]
    assert statuses == [
        {"status": "running", "previous": "pending", "error": None},
        {"status": "pending", "previous": "running", "error": None},
    ]


def test_event_sequences_are_contiguous_from_one():
    session = new_session()
    post_user(session, "hello")
    run_active_turn(session)
    sequences = list(Event.objects.filter(session=session).order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))


def test_failing_llm_call_fails_the_turn_and_the_next_message_works():
    broken = make_model(model_id="error")
    session = new_session()
    post_user(session, "hello", controls={"model_id": str(broken.pk)})
    turn = run_active_turn(session)
    session.refresh_from_db()
    assert turn.status == "failed" and session.status == "failed"
    assert session.error["code"] == "llm_provider_error" and "simulated provider error" in session.error["message"]
    failed = Event.objects.get(session=session, type="turn.failed")
    assert failed.data == {"error": session.error}
    post_user(session, "hello again")
    turn = run_active_turn(session)
    session.refresh_from_db()
    assert turn.status == "completed" and session.status == "pending" and session.error is None
    assert Turn.objects.filter(session=session).count() == 2


def test_message_posted_before_the_llm_call_is_seen_by_the_running_turn():
    session = new_session()
    post_user(session, "first")
    post_user(session, "second")  # stored while the turn is active: no second turn
    turn = run_active_turn(session)
    assert Turn.objects.filter(session=session).count() == 1 and turn.iterations == 1
    assert "second" in messages(session)[-1].content[0]["text"]


def test_message_arriving_after_the_last_llm_call_keeps_the_turn_going(monkeypatch):

    session = new_session()
    post_user(session, "first")
    original = turns.turn_complete
    posted = []

    def complete_after_a_late_message(**kwargs):
        if not posted:
            posted.append(post_user(session, "late"))
        return original(**kwargs)

    monkeypatch.setattr(turns, "turn_complete", complete_after_a_late_message)
    turn = run_active_turn(session)
    assert turn.status == "completed" and turn.iterations == 2
    assert [m.role for m in messages(session)] == ["user", "assistant", "user", "assistant"]
    assert "late" in messages(session)[-1].content[0]["text"]


def test_disabled_model_fails_with_model_disabled():
    session = new_session()
    model = make_model(model_id="llmsim-disabled", status="disabled")
    Session.objects.filter(pk=session.pk).update(model=model)
    post_user(session, "hi")
    run_active_turn(session)
    session.refresh_from_db()
    assert session.status == "failed" and session.error["code"] == "model_disabled"


def test_a_stored_message_the_loop_cannot_read_fails_the_turn_with_internal_error(caplog):
    """Not a provider's fault and not a tool's: a bug of ours (here a user message whose text part
    lost its text, which the API never stores) ends the turn with a generic `internal_error`."""
    session = new_session()
    post_user(session, "hi")
    Message.objects.filter(session=session).update(content=[{"type": "text"}])
    turn = run_active_turn(session)
    session.refresh_from_db()
    assert turn.status == "failed" and session.status == "failed"
    assert turn.error == session.error == {"code": "internal_error", "message": "The turn failed on an internal error"}
    assert Event.objects.get(session=session, type="turn.failed").data == {"error": turn.error}
    crashed = [r for r in caplog.records if r.levelname == "ERROR" and "crashed" in r.getMessage()]
    assert len(crashed) == 1 and "KeyError: 'text'" in caplog.text  # the details go to the log, not the client


def test_claim_respects_a_live_lease_and_takes_a_stale_one():
    session = new_session()
    post_user(session, "hi")
    turn = Turn.objects.get(session=session)
    assert claim(turn.pk, "worker-a")
    assert not claim(turn.pk, "worker-b")
    Turn.objects.filter(pk=turn.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert claim(turn.pk, "worker-b")
    assert Turn.objects.get(pk=turn.pk).lease_owner == "worker-b"
    assert event_types(session).count("turn.started") == 1


def test_completed_turn_is_not_run_again():
    session = new_session()
    post_user(session, "hi")
    turn = run_active_turn(session)
    count = Event.objects.filter(session=session).count()
    run_active_turn(session)  # a redelivered task
    assert Event.objects.filter(session=session).count() == count
    assert Message.objects.filter(session=session, role="assistant").count() == 1
    assert turn.status == "completed"


def run_in_thread(turn_id, owner: str = "owner") -> tuple[threading.Thread, list]:
    """run_turn in a thread, as a worker runs it; returns the thread and what it raised."""
    raised = []

    def work():
        try:
            run_turn(turn_id, owner)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    return thread, raised


def test_a_session_deleted_between_steps_stops_the_turn_without_an_error(fake_llm, fake_model, caplog):
    fake_llm.reply({"delay": 1.0, "text": "an answer nobody will store"})
    session = make_session(make_agent(), model_id=fake_model.pk)
    post_user(session, "hi")
    turn = Turn.objects.get(session=session)
    worker, raised = run_in_thread(turn.pk)
    wait_for(lambda: fake_llm.requests, 30, message="the LLM call")
    Session.objects.filter(pk=session.pk).delete()  # while the answer is on its way
    worker.join(15)
    assert not worker.is_alive() and raised == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert any("stopped: lease lost" in r.getMessage() for r in caplog.records)
    assert not Event.objects.filter(session_id=session.pk).exists()


def terminate_heartbeat_connection() -> bool:
    """Kill the backend of this process's heartbeat connection (not another process's: e2e workers share the
    test database, and their idle heartbeats' last statement is a lease renewal too)."""
    pid = runtime().beat_pool.submit(lambda: connection.connection and connection.connection.get_backend_pid()).result()
    if not pid:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        return bool(cursor.fetchone()[0])


def test_the_heartbeat_rides_out_a_database_blip_and_the_lease_never_lapses(settings, caplog):
    settings.TURN_LEASE_SECONDS = 3  # a beat every 0.75 s: a missed beat or two is slack, a dead heartbeat is not
    llm.warm_up()
    slow = make_model(model_id="llmsim-slow-blip", settings={"latency_ms": 6000})
    session = new_session()
    Session.objects.filter(pk=session.pk).update(model=slow)
    post_user(session, "What is 1 + 1?")
    turn = Turn.objects.get(session=session)
    worker, raised = run_in_thread(turn.pk)
    wait_for(lambda: Event.objects.filter(session=session, type="llm.started").exists(), 30, message="llm.started")
    wait_for(terminate_heartbeat_connection, 5, message="the heartbeat's connection")
    samples = lapsed = 0
    while worker.is_alive():
        samples += 1
        lapsed += Turn.objects.filter(pk=turn.pk, status="running").exclude(lease_expires_at__gt=Now()).exists()
        time.sleep(0.1)
    worker.join()
    assert raised == []
    assert samples > 20 and lapsed == 0, f"the lease lapsed in {lapsed} of {samples} samples"
    assert any("heartbeat of turn" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    turn.refresh_from_db()
    assert turn.status == "completed"
    assert not Event.objects.filter(session=session, type="turn.failed").exists()


def test_deleting_the_session_stops_the_in_flight_llm_call():

    llm.warm_up()  # as a worker does at start: the import is not part of the call

    slow = make_model(model_id="llmsim-slow-delete", settings={"latency_ms": 200, "tokens_per_second": 5})
    session = new_session()
    Session.objects.filter(pk=session.pk).update(model=slow)
    post_user(session, "Tell me a long story about the sea and the wind")
    turn = Turn.objects.get(session=session)
    worker = threading.Thread(target=run_turn, args=(turn.pk, "owner"))
    worker.start()
    wait_for(lambda: Event.objects.filter(session=session, type="llm.started").exists(), 30, message="llm.started")
    time.sleep(0.5)  # the reply streams at 5 words a second: mid-call
    started = time.monotonic()
    Session.objects.filter(pk=session.pk).delete()
    worker.join(10)
    assert not worker.is_alive()
    assert time.monotonic() - started < 4  # well before the reply would have finished
    assert not Event.objects.filter(session_id=session.pk).exists()
