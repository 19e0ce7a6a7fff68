"""Turn control in this process (real runtime, PostgreSQL, Redis wake-ups): cancel, interrupt, tool
approval, budgets."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from everruns.core.errors import Conflict, NotFound
from runner import llm
from runner.loop import CLIENT_TOOL_UNANSWERED
from runner.runtime import run_turn, runtime
from runner.tools import registry
from sessions import services, turns
from sessions.models import Event, Message, Session, Turn
from tests.conftest import wait_for
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import event_types, messages, post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx")


@pytest.fixture(autouse=True, scope="module")
def _litellm_imported():
    """The first LLM call of a process imports litellm (seconds): not inside a timed test."""
    llm.warm_up()


STORY = "Tell me a long story about a lighthouse keeper, a storm, a ship and a cat named Pepper."


def slow_session(tokens_per_second=6, latency_ms=0, **agent_fields):
    """A session on llmsim slowed down, so a turn is caught in the middle of its LLM call."""
    model = make_model(settings={"tokens_per_second": tokens_per_second, "latency_ms": latency_ms})
    return make_session(make_agent(**agent_fields), model_id=model.pk)


def start_turn(session, owner="test-owner"):
    """Run the session's open turn on this process's runtime without waiting for it."""
    turn = Turn.objects.filter(session=session).order_by("-id").first()
    return turn, runtime().submit(turn.pk, owner)


def wait_event(session, type_, count=1, timeout=20.0):
    wait_for(
        lambda: Event.objects.filter(session=session, type=type_).count() >= count, timeout, message=f"{count} {type_}"
    )


def wait_deltas_then(session, seconds=0.8):
    wait_event(session, "llm.started")
    time.sleep(seconds)


def set_agent(session, **fields):
    Agent.objects.filter(pk=session.agent_id).update(**fields)


def terminal_events(session) -> list[str]:
    return [t for t in event_types(session) if t in ("turn.completed", "turn.failed", "turn.cancelled")]


# --- cancel -------------------------------------------------------------------------------------------
def test_cancel_during_an_llm_call_stops_it_and_keeps_the_partial_text():
    session = slow_session()
    post_user(session, STORY)
    turn, future = start_turn(session)
    wait_deltas_then(session)
    started = time.monotonic()
    answer = turns.turn_cancel_request(session_id=session.pk, reason="enough")
    future.result(timeout=5)
    assert time.monotonic() - started < 2.5
    assert answer.status == "pending"
    turn.refresh_from_db()
    session.refresh_from_db()
    assert turn.status == "cancelled" and session.status == "pending" and session.active_turn_id is None
    partial = messages(session)[-1]
    assert partial.role == "assistant" and partial.metadata["cancelled"] is True
    assert partial.content[0]["text"].strip()
    # The abandoned call's usage is estimated and counted: cancelling does not hide what was spent.
    usage = partial.metadata["usage"]
    assert usage["estimated"] is True and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert session.input_tokens == usage["input_tokens"] and turn.iterations == 1
    assert "llm.completed" not in event_types(session)
    cancelled = Event.objects.get(session=session, type="turn.cancelled")
    assert cancelled.data == {"reason": "enough"}
    assert event_types(session)[-3:] == ["message.assistant", "turn.cancelled", "session.status"]


def test_cancel_during_a_tool_call_signals_the_tool_and_the_call_is_never_run_again(monkeypatch):
    tool = next(t for t in registry.CAPABILITIES["test_math"].tools if t.name == "add")
    observed = threading.Event()

    def add_until_cancelled(ctx, args):
        if ctx.cancelled.wait(15):
            observed.set()
            return {"result": "stopped"}
        return {"result": args["a"] + args["b"]}

    monkeypatch.setattr(tool, "func", add_until_cancelled)
    session = make_session(make_agent(capabilities=["test_math"]))
    post_user(session, "What is 7 + 8?")
    turn, future = start_turn(session)
    wait_event(session, "tool.started")
    turns.turn_cancel_request(session_id=session.pk, reason="stop")
    future.result(timeout=5)
    assert observed.wait(5), "the tool never saw the cancellation"
    results = [m for m in messages(session) if m.role == "tool_result"]
    assert len(results) == 1 and results[0].content[0]["error"].startswith("cancelled")
    assert terminal_events(session) == ["turn.cancelled"]
    # The next turn does not run the cancelled call again: the model sees its cancelled result.
    monkeypatch.undo()
    post_user(session, "Thanks, never mind.")
    run_active_turn(session)
    assert Message.objects.filter(session=session, role="tool_result").count() == 1
    assert Session.objects.get(pk=session.pk).status == "pending"


def test_cancel_of_a_queued_turn_ends_it_at_once_and_no_worker_runs_it():
    session = make_session()
    post_user(session, "hello")
    turn = Turn.objects.get(session=session)
    answer = turns.turn_cancel_request(session_id=session.pk, reason=None)
    assert answer.status == "pending"
    turn.refresh_from_db()
    assert turn.status == "cancelled"
    run_turn(turn.pk, "late-worker")  # the queued task is delivered anyway
    assert "llm.started" not in event_types(session)
    assert terminal_events(session) == ["turn.cancelled"]


def test_nothing_to_cancel_is_a_conflict_and_changes_nothing():
    session = make_session()
    before = event_types(session)
    with pytest.raises(Conflict):
        turns.turn_cancel_request(session_id=session.pk)
    post_user(session, "hello")
    run_active_turn(session)
    with pytest.raises(Conflict):
        turns.turn_cancel_request(session_id=session.pk)
    assert terminal_events(session) == ["turn.completed"] and before == []


def test_a_stored_cancel_is_carried_out_by_the_worker_that_resumes_the_turn():
    session = make_session()
    post_user(session, "hello")
    turn = Turn.objects.get(session=session)
    assert turns.turn_claim(turn.pk, "worker-that-dies")  # its lease is alive: the API leaves the end to it
    answer = turns.turn_cancel_request(session_id=session.pk, reason="later")
    assert answer.status == "running"
    Turn.objects.filter(pk=turn.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_turn(turn.pk, "rescuer")
    turn.refresh_from_db()
    assert turn.status == "cancelled"
    assert "llm.started" not in event_types(session)
    assert Event.objects.get(session=session, type="turn.cancelled").data == {"reason": "later"}


def test_cancel_racing_completion_ends_the_turn_exactly_once():
    for delay in (0.0, 0.005, 0.01, 0.02, 0.04, 0.08):
        session = make_session(make_agent(capabilities=["test_math"]))
        post_user(session, "What is 7 + 8?")
        turn, future = start_turn(session)
        time.sleep(delay)
        try:
            turns.turn_cancel_request(session_id=session.pk, reason="race")
        except Conflict:
            pass  # it had ended already
        future.result(timeout=10)
        turn.refresh_from_db()
        ends = terminal_events(session)
        assert len(ends) == 1, (delay, event_types(session), Turn.objects.get(pk=turn.pk).status)
        assert turn.status == {"turn.completed": "completed", "turn.cancelled": "cancelled"}[ends[0]]
        assert Session.objects.get(pk=session.pk).status == "pending"
        sequences = list(Event.objects.filter(session=session).values_list("sequence", flat=True))
        assert sequences == list(range(1, len(sequences) + 1))


# --- interrupt ----------------------------------------------------------------------------------------
def test_interrupt_abandons_the_call_and_answers_with_the_new_message_included():
    session = slow_session(tokens_per_second=10)
    post_user(session, STORY)
    turn, future = start_turn(session)
    wait_deltas_then(session, 0.6)
    post_user(session, "What is 2 + 3?", controls={"interrupt": True})
    future.result(timeout=30)
    turn.refresh_from_db()
    assert turn.status == "completed"
    roles = [(m.role, (m.metadata or {}).get("interrupted")) for m in messages(session)]
    assert roles == [("user", None), ("user", None), ("assistant", True), ("assistant", None)]
    assert "2 + 3 = 5" in messages(session)[-1].content[0]["text"]
    completed = Event.objects.get(session=session, type="llm.completed")
    assert "unstored_calls" not in completed.data  # the abandoned call was counted when it was abandoned
    estimate = messages(session)[2].metadata["usage"]
    assert estimate["estimated"] is True and estimate["input_tokens"] > 0 and estimate["output_tokens"] > 0
    assert turn.input_tokens == completed.data["usage"]["input_tokens"] + estimate["input_tokens"]
    assert turn.iterations == 2  # an interrupted call is an LLM call of the turn (max_iterations)
    assert event_types(session).count("llm.started") == 2


def test_interrupts_count_toward_the_turns_limit_of_llm_calls():
    session = slow_session(tokens_per_second=10)
    Agent.objects.filter(pk=session.agent_id).update(max_iterations=2)
    post_user(session, STORY)
    turn, future = start_turn(session)
    for n in (1, 2):
        wait_event(session, "llm.started", count=n)
        time.sleep(0.5)
        post_user(session, f"{STORY} Part {n}.", controls={"interrupt": True})
    future.result(timeout=30)
    turn.refresh_from_db()
    assert turn.status == "failed" and turn.error["code"] == "max_iterations"
    assert event_types(session).count("llm.started") == 2 and "llm.completed" not in event_types(session)


def test_a_message_without_interrupt_waits_for_the_next_llm_call():
    session = slow_session(tokens_per_second=20)
    post_user(session, STORY)
    turn, future = start_turn(session)
    wait_deltas_then(session, 0.3)
    post_user(session, "What is 2 + 3?")
    future.result(timeout=30)
    metadata = [(m.role, m.metadata or {}) for m in messages(session)]
    assert not any(md.get("interrupted") for _, md in metadata)
    assert [r for r, _ in metadata] == ["user", "user", "assistant", "assistant"]


# --- tool approval --------------------------------------------------------------------------------------
def math_session(policy):
    session = make_session(make_agent(capabilities=["test_math"]))
    set_agent(session, tool_policy=policy)
    post_user(session, "What is 7 + 8?")
    turn = run_active_turn(session)
    return session, turn


def pending_call(session) -> str:
    return Event.objects.get(session=session, type="tool.approval_requested").data["tool_call_id"]


@pytest.mark.parametrize("policy", [{"add": "ask"}, {"*": "ask"}])
def test_an_ask_tool_waits_for_approval_holding_no_worker(policy):
    session, turn = math_session(policy)
    session.refresh_from_db()
    assert turn.status == "waiting" and turn.lease_owner == "" and turn.lease_expires_at is None
    assert session.status == "waiting"
    requested = Event.objects.get(session=session, type="tool.approval_requested")
    assert requested.data["name"] == "add" and requested.data["arguments"] == {"a": 7, "b": 8}
    assert "tool.started" not in event_types(session)
    assert turns.turns_requeue_stuck() == 0  # the sweeper leaves a waiting turn alone


def test_an_approved_call_runs_and_the_turn_goes_on_in_another_worker():
    session, turn = math_session({"add": "ask"})
    turns.approval_resolve(session_id=session.pk, tool_call_id=pending_call(session), approved=True, reason="ok")
    turn.refresh_from_db()
    assert turn.status == "queued" and Session.objects.get(pk=session.pk).status == "running"
    run_turn(turn.pk, "another-worker")  # the worker that parked it is not needed
    turn.refresh_from_db()
    assert turn.status == "completed"
    assert messages(session)[-1].content[0]["text"] == "7 + 8 = 15."
    resolved = Event.objects.get(session=session, type="tool.approval_resolved")
    assert resolved.data == {"tool_call_id": pending_call(session), "approved": True, "reason": "ok"}


def test_a_denied_call_returns_the_denial_to_the_model():
    session, turn = math_session({"add": "ask"})
    turns.approval_resolve(session_id=session.pk, tool_call_id=pending_call(session), approved=False, reason="no")
    run_turn(turn.pk, "worker")
    result = next(m for m in messages(session) if m.role == "tool_result").content[0]
    assert result["error"] == "denied: no" and result["result"] is None
    assert "tool.started" not in event_types(session)
    assert "failed" in messages(session)[-1].content[0]["text"]


def test_approving_an_unknown_call_is_404_and_twice_is_409():
    session, turn = math_session({"add": "ask"})
    with pytest.raises(NotFound):
        turns.approval_resolve(session_id=session.pk, tool_call_id="call_nope", approved=True)
    call_id = pending_call(session)
    turns.approval_resolve(session_id=session.pk, tool_call_id=call_id, approved=True)
    with pytest.raises(Conflict):
        turns.approval_resolve(session_id=session.pk, tool_call_id=call_id, approved=False)
    assert Event.objects.filter(session=session, type="tool.approval_resolved").count() == 1


def test_a_new_message_while_waiting_denies_the_pending_call_and_goes_on():
    session, turn = math_session({"add": "ask"})
    post_user(session, "Forget it, just say hello.")
    resolved = Event.objects.get(session=session, type="tool.approval_resolved")
    assert resolved.data["approved"] is False
    turn.refresh_from_db()
    assert turn.status == "queued"
    run_turn(turn.pk, "worker")
    turn.refresh_from_db()
    assert turn.status == "completed"
    assert Turn.objects.filter(session=session).count() == 1
    assert next(m for m in messages(session) if m.role == "tool_result").content[0]["error"].startswith("denied")


def test_cancel_while_waiting_for_approval_denies_the_call_and_ends_the_turn():
    session, turn = math_session({"add": "ask"})
    answer = turns.turn_cancel_request(session_id=session.pk, reason="changed my mind")
    assert answer.status == "pending"
    turn.refresh_from_db()
    assert turn.status == "cancelled"
    resolved = Event.objects.get(session=session, type="tool.approval_resolved")
    assert resolved.data["approved"] is False
    result = next(m for m in messages(session) if m.role == "tool_result").content[0]
    assert result["error"].startswith("cancelled")
    with pytest.raises(Conflict):
        turns.approval_resolve(session_id=session.pk, tool_call_id=pending_call(session), approved=True)


# --- budgets ----------------------------------------------------------------------------------------------
def failed_error(session) -> dict:
    return Event.objects.get(session=session, type="turn.failed").data["error"]


def test_the_agents_token_budget_per_turn_stops_before_the_next_llm_call():
    session = make_session(make_agent(capabilities=["test_math"]))
    set_agent(session, limits={"max_tokens_per_turn": 5})
    post_user(session, "What is 7 + 8?")
    turn = run_active_turn(session)
    assert turn.status == "failed" and turn.iterations == 1  # the first call ran, the second did not
    error = failed_error(session)
    assert error["code"] == "budget_exceeded"
    assert error["details"]["limit"] == "max_tokens_per_turn" and error["details"]["used"] >= 5
    assert Session.objects.get(pk=session.pk).error == error


def test_the_agents_cost_budget_per_turn():
    model = make_model(settings={"usd_per_million_tokens": 1000})
    session = make_session(make_agent(capabilities=["test_math"]), model_id=model.pk)
    set_agent(session, limits={"max_cost_usd_per_turn": 0.001})
    post_user(session, "What is 7 + 8?")
    turn = run_active_turn(session)
    assert turn.status == "failed" and turn.cost_usd > 0.001
    assert failed_error(session)["details"]["limit"] == "max_cost_usd_per_turn"


def test_the_sessions_token_budget_spans_turns():
    session = make_session(limits={"max_tokens": 10})
    post_user(session, "hello")
    assert run_active_turn(session).status == "completed"
    post_user(session, "hello again")
    turn = run_active_turn(session)
    assert turn.status == "failed" and turn.iterations == 0  # no LLM call at all
    assert failed_error(session)["details"]["limit"] == "max_tokens"
    assert event_types(session).count("llm.started") == 1


def test_the_sessions_cost_budget():
    model = make_model(settings={"usd_per_million_tokens": 1000})
    session = make_session(model_id=model.pk)
    Session.objects.filter(pk=session.pk).update(limits={"max_cost_usd": 0.0001})
    post_user(session, "hello")
    run_active_turn(session)
    post_user(session, "hello again")
    assert run_active_turn(session).status == "failed"
    assert failed_error(session)["details"] == {
        "limit": "max_cost_usd",
        "scope": "session",
        "value": 0.0001,
        "used": Session.objects.get(pk=session.pk).cost_usd,
    }


# --- front-end tools ------------------------------------------------------------------------------------
CHART = {"name": "show_chart", "description": "Show a chart.", "parameters": {"type": "object", "properties": {}}}


def test_a_call_to_a_front_end_tool_ends_the_turn_and_the_clients_result_starts_the_next(fake_llm, fake_model):
    fake_llm.reply(
        {"tool_calls": [{"id": "call_chart", "name": "show_chart", "arguments": {"kind": "bar"}}]},
        {"text": "The chart is on your screen."},
    )
    session = make_session(make_agent(), model_id=fake_model.pk)
    services.message_post(
        session=Session.objects.select_related("agent").get(pk=session.pk),
        content=[{"type": "text", "text": "Chart it"}],
        client_tools=[CHART],
    )
    turn = run_active_turn(session)
    assert turn.status == "completed"
    offered = [t["function"]["name"] for t in fake_llm.requests[0]["tools"]]
    assert offered == ["show_chart"]
    completed = Event.objects.get(session=session, type="turn.completed")
    assert completed.data["pending_tool_calls"] == [
        {"id": "call_chart", "name": "show_chart", "arguments": {"kind": "bar"}, "argument_error": None}
    ]
    assert not Message.objects.filter(session=session, role="tool_result").exists()  # the server ran nothing
    services.tool_result_post(
        session=Session.objects.select_related("agent").get(pk=session.pk),
        tool_call_id="call_chart",
        result={"shown": True},
    )
    run_active_turn(session)
    assert messages(session)[-1].content[0]["text"] == "The chart is on your screen."
    tool_message = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert tool_message["tool_call_id"] == "call_chart" and "shown" in tool_message["content"]
    with pytest.raises(Conflict):
        services.tool_result_post(session=session, tool_call_id="call_chart", result={})
    with pytest.raises(NotFound):
        services.tool_result_post(session=session, tool_call_id="call_nope", result={})


def test_a_message_instead_of_the_clients_result_answers_the_call_with_an_error(fake_llm, fake_model):
    fake_llm.reply(
        {"tool_calls": [{"id": "call_chart", "name": "show_chart", "arguments": {}}]},
        {"text": "Fine, no chart."},
    )
    session = make_session(make_agent(), model_id=fake_model.pk)
    services.message_post(
        session=Session.objects.select_related("agent").get(pk=session.pk),
        content=[{"type": "text", "text": "Chart it"}],
        client_tools=[CHART],
    )
    run_active_turn(session)
    post_user(session, "Never mind.")
    run_active_turn(session)
    result = next(m for m in messages(session) if m.role == "tool_result").content[0]
    assert result["error"] == CLIENT_TOOL_UNANSWERED
    assert messages(session)[-1].content[0]["text"] == "Fine, no chart."
