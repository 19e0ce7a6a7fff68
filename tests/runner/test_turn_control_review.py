"""Review of turn control (issue 10): interleavings that the first tests did not reach. Each test states
the behaviour the contract or the README promises; they fail on main at the time of the review.

Step boundaries are hit exactly the way tests/runner/test_crash_points.py does it: the runtime's `db` is
wrapped, and something happens right after a given step has committed (a cancel lands, a connection blips)."""

import asyncio
import threading
import time

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.db.models import F

from runner import llm
from runner.runtime import runtime
from sessions import services, turns
from sessions.fs import files
from sessions.models import Event, Message, Session, Turn
from tests.conftest import wait_for
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import event_types, messages, post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx")

STORY = "Tell me a long story about a lighthouse keeper, a storm, a ship and a cat named Pepper."


@pytest.fixture(autouse=True, scope="module")
def _litellm_imported():
    llm.warm_up()


def after_step(monkeypatch, step_name: str, action):
    """Run `action()` (on a thread of its own) right after the runtime's first `step_name` step commits,
    before the turn's task goes on."""
    rt = runtime()
    real_db = rt.db
    fired = threading.Event()

    async def db(fn, *args, **kwargs):
        result = await real_db(fn, *args, **kwargs)
        if getattr(fn, "__name__", "") == step_name and not fired.is_set():
            fired.set()
            await asyncio.get_running_loop().run_in_executor(None, _closing(action))
        return result

    monkeypatch.setattr(rt, "db", db)
    return fired


def _closing(action):
    def run():
        try:
            action()
        finally:
            connection.close()

    return run


def store_cancel_in_background(session_id, answers: list):
    """POST .../cancel, on a thread (it waits up to 2 s for the worker); returns once the request is stored."""

    def cancel():
        try:
            answers.append(turns.turn_cancel_request(session_id=session_id, reason="stop"))
        finally:
            connection.close()

    def action():
        threading.Thread(target=cancel, daemon=True).start()
        wait_for(
            lambda: Turn.objects.filter(session_id=session_id, cancel_requested_at__isnull=False).exists(),
            5,
            message="the stored cancel",
        )

    return action


# --- 1. cancel right after an interrupt ---------------------------------------------------------------
def test_a_cancel_landing_right_after_an_interrupted_partial_is_stored_ends_the_turn(monkeypatch):
    """Interrupt, then press stop: the interrupted partial is committed, and before the next LLM call starts
    the cancel arrives. `self.partial`/`partial_message_id` still describe the interrupted call, so
    turn_cancel inserts that message again under the same id: IntegrityError, the cancel is not carried
    out, the task dies, the turn stays `running` until its lease lapses (~40 s)."""
    model = make_model(settings={"tokens_per_second": 10})
    session = make_session(make_agent(), model_id=model.pk)
    post_user(session, STORY)
    turn = Turn.objects.get(session=session)
    answers = []
    after_step(monkeypatch, "store_interrupted", store_cancel_in_background(session.pk, answers))
    future = runtime().submit(turn.pk, "worker")
    wait_for(lambda: _deltas(session), 20, message="the call in flight")
    post_user(session, "What is 2 + 3?", controls={"interrupt": True})
    error = future.exception(timeout=20)
    wait_for(lambda: answers, 10, message="the cancel's answer")
    turn.refresh_from_db()
    assert error is None and turn.status == "cancelled", (repr(error), turn.status)
    assert answers[0].status == "pending"
    partials = [m for m in messages(session) if m.role == "assistant"]
    assert [bool((m.metadata or {}).get("interrupted")) for m in partials] == [True]  # stored once


def _deltas(session) -> bool:
    """Deltas are not stored: a slow llmsim call is in flight once its `llm.started` is a moment old."""
    if Event.objects.filter(session=session, type="llm.started").exists():
        time.sleep(0.6)
        return True
    return False


# --- 2. lock order in message_post ---------------------------------------------------------------------
def test_a_message_posted_with_a_stale_session_does_not_deadlock_with_a_worker_step():
    """The view reads the session (no active turn yet); a concurrent POST creates turn T and a worker
    starts on it. message_post then locks the session row first and T second (the stale path), while a
    worker step holds T and waits for the session row (every step: turn, then session). PostgreSQL
    breaks the deadlock by failing the API request (a 500)."""
    session = make_session()
    stale = Session.objects.select_related("agent").get(pk=session.pk)  # what the view read: no active turn
    post_user(session, "first")  # the concurrent POST: turn T, session running
    turn = Turn.objects.get(session=session)
    holding = threading.Event()
    errors = []

    def worker_step():  # what turn_claim / any guarded step does: lock the turn, then append (session row)
        try:
            with transaction.atomic():
                Turn.objects.select_for_update().get(pk=turn.pk)
                holding.set()
                time.sleep(0.5)  # meanwhile message_post locks the session row and waits for the turn
                Session.objects.filter(pk=session.pk).update(last_event_sequence=F("last_event_sequence") + 0)
        except Exception as exc:  # the step would be retried by the runner (an outage to it)
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker_step)
    thread.start()
    holding.wait(5)
    time.sleep(0.1)
    try:
        services.message_post(session=stale, content=[{"type": "text", "text": "second"}])
    except OperationalError as exc:
        pytest.fail(f"message_post lost a deadlock against a worker step: {exc}")
    finally:
        thread.join(10)
    assert Message.objects.filter(session=session, role="user").count() == 2


# --- 3. a database blip right after the claim ------------------------------------------------------------
def test_a_database_blip_right_after_the_claim_is_not_the_turns_fault(monkeypatch):
    """The first step after the claim meets a broken connection (a restart the thread had not noticed
    yet): ridden out like any other step, not an internal_error, not a turn left `running` until its
    lease lapses."""
    rt = runtime()
    real_db = rt.db
    blipped = []

    async def db(fn, *args, **kwargs):
        if getattr(fn, "__name__", "") != "turn_claim" and not blipped:
            blipped.append(fn)
            raise OperationalError("server closed the connection unexpectedly")
        return await real_db(fn, *args, **kwargs)

    monkeypatch.setattr(rt, "db", db)
    session = make_session()
    post_user(session, "hello")
    turn = run_active_turn(session)
    assert blipped
    assert turn.status == "completed", (turn.status, turn.error)


# --- 4. a message posted during the call whose answer asks for approval ------------------------------------
def test_a_message_posted_during_the_llm_call_is_not_left_behind_a_pending_approval():
    """The README: "A new user message denies pending calls and resumes the turn". A message posted while
    the model is still answering (no approval pending yet) is not denied anything: the answer's `ask`
    call then parks the turn `waiting`, with the newer message unanswered until a person decides."""
    model = make_model(settings={"latency_ms": 1500})
    session = make_session(make_agent(capabilities=["test_math"], tool_policy={"add": "ask"}), model_id=model.pk)
    post_user(session, "What is 7 + 8?")
    turn = Turn.objects.get(session=session)
    future = runtime().submit(turn.pk, "worker")
    wait_for(lambda: Event.objects.filter(session=session, type="llm.started").exists(), 20)
    post_user(session, "Forget it, just say hello.")
    future.result(timeout=20)
    turn.refresh_from_db()
    assert turn.status != "waiting", "parked on an approval although a newer user message came"


# --- 5. a provider that reuses tool call ids ---------------------------------------------------------------
def test_an_ask_tool_is_never_run_without_its_own_approval(fake_llm, fake_model):
    """Approvals are keyed by the provider's tool call id. A provider that reuses ids ("call_0" for every
    first call: some OpenAI-compatible servers do) gets its second `ask` call run on the first one's
    approval."""
    fake_llm.reply(
        {"tool_calls": [{"id": "call_0", "name": "add", "arguments": {"a": 1, "b": 2}}]},
        {"tool_calls": [{"id": "call_0", "name": "add", "arguments": {"a": 100, "b": 200}}]},
        {"text": "done"},
    )
    session = make_session(make_agent(capabilities=["test_math"], tool_policy={"add": "ask"}), model_id=fake_model.pk)
    post_user(session, "Add things.")
    turn = run_active_turn(session)
    assert turn.status == "waiting"
    turns.approval_resolve(session_id=session.pk, tool_call_id="call_0", approved=True)
    turn = run_active_turn(session, "worker-2")
    requested = Event.objects.filter(session=session, type="tool.approval_requested").count()
    started = Event.objects.filter(session=session, type="tool.started").count()
    assert started <= requested, (requested, started, event_types(session))


# --- 6. a tool result PostgreSQL's jsonb cannot hold ------------------------------------------------------
def test_a_tool_result_with_a_nul_character_does_not_poison_the_session(fake_llm, fake_model):
    """`read_file` of a text file with a NUL byte: the result cannot be stored in jsonb (DataError, not an
    outage), the turn fails with internal_error, and its call stays unanswered, so every later turn of
    the session runs the call again and fails the same way."""
    fake_llm.reply({"tool_calls": [{"id": "call_r", "name": "read_file", "arguments": {"path": "/a.txt"}}]})
    session = make_session(make_agent(capabilities=["session_file_system"]), model_id=fake_model.pk)
    files.create(session.pk, "/a.txt", content="a\x00b")
    post_user(session, "Read /a.txt")
    first = run_active_turn(session)
    post_user(session, "Never mind; say hello.")
    second = run_active_turn(session)
    assert (first.status, second.status) != ("failed", "failed"), (first.error, second.error)
