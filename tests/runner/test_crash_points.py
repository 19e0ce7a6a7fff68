"""A worker that dies at any point of a turn loses nothing and repeats nothing: the kill-point matrix.

The worker "dies" right after its k-th database step commits: the step's task stops there, writing
nothing more (as a SIGKILL would leave it), its lease lapses, and another worker resumes the turn
from the log. Every step of a two-call tool turn is a kill point; killing before a step is killing
after the one before it."""

import asyncio
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from runner import llm
from runner.loop import INTERRUPTED_TOOL_ERROR
from runner.runtime import run_turn, runtime
from sessions.fs import files
from sessions.models import Event, Message, Session, Turn
from tests.conftest import wait_for
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import messages, post_user

pytestmark = pytest.mark.usefixtures("seeded_tx")

# The database steps of "What is 7 + 8?" on a test_math agent (llmsim), in order.
STEPS = [
    "turn_claim",
    "_read_state",
    "llm.started (1)",
    "store_response (tool call)",
    "tools_started",
    "store_tool_result",
    "_read_state",
    "llm.started (2)",
    "store_response (answer)",
    "turn_complete",
]


@pytest.fixture(autouse=True, scope="module")
def _litellm_imported():
    llm.warm_up()


def die_after(monkeypatch, steps: int):
    """This process's runtime runs `steps` database steps of the next turn, then its task dies."""
    rt = runtime()
    real_db = rt.db
    done = {"steps": 0}

    async def db(fn, *args, **kwargs):
        result = await real_db(fn, *args, **kwargs)
        done["steps"] += 1
        if done["steps"] == steps:
            raise asyncio.CancelledError  # gone, right after the commit: no further write
        return result

    monkeypatch.setattr(rt, "db", db)
    return done


def resume_elsewhere(turn):
    """The dead worker's lease lapses; another worker takes the turn over."""
    Turn.objects.filter(pk=turn.pk, status="running").update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_turn(turn.pk, "rescuer")
    turn.refresh_from_db()
    return turn


def assert_exactly_once(session, turn):
    """One answer per LLM call, one result per tool call, contiguous events, one end."""
    stored = messages(session)
    assistant = [m for m in stored if m.role == "assistant"]
    results = [m for m in stored if m.role == "tool_result"]
    assert turn.status == "completed"
    assert len(assistant) == 2, [m.content for m in assistant]
    assert assistant[0].content[0]["type"] == "tool_call" and assistant[1].content[0]["text"] == "7 + 8 = 15."
    assert [r.content[0]["tool_call_id"] for r in results] == [assistant[0].content[0]["id"]]
    assert results[0].content[0]["result"] == {"result": 15}
    types = list(Event.objects.filter(session=session).order_by("sequence").values_list("type", flat=True))
    sequences = list(Event.objects.filter(session=session).order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    assert types.count("turn.completed") == 1 and "turn.failed" not in types
    assert types.count("llm.completed") == 2 and types.count("turn.started") == 1
    assert Session.objects.get(pk=session.pk).status == "pending"


@pytest.mark.parametrize("steps", range(1, len(STEPS) + 1), ids=[f"after-{s}" for s in STEPS])
def test_a_worker_killed_after_any_step_loses_and_repeats_nothing(monkeypatch, steps):
    session = make_session(make_agent(capabilities=["test_math"]))
    post_user(session, "What is 7 + 8?")
    turn = Turn.objects.get(session=session)
    done = die_after(monkeypatch, steps)
    run_turn(turn.pk, "dying-worker")
    assert done["steps"] == steps
    monkeypatch.undo()
    turn = resume_elsewhere(turn)
    assert_exactly_once(session, turn)
    completed = list(Event.objects.filter(session=session, type="llm.completed").order_by("sequence"))
    if STEPS[steps - 1].startswith("llm.started"):
        # The dead worker's call was made and never stored: counted again, marked as an estimate.
        lost = completed[0] if STEPS[steps - 1] == "llm.started (1)" else completed[1]
        assert lost.data["unstored_calls"] == 1 and lost.data["unstored_usage"]["estimated"] is True
        turn_tokens = sum(e.data["usage"]["input_tokens"] for e in completed)
        assert turn.input_tokens == turn_tokens + lost.data["unstored_usage"]["input_tokens"]
    else:
        assert all("unstored_calls" not in e.data for e in completed)
        assert turn.input_tokens == sum(e.data["usage"]["input_tokens"] for e in completed)


def test_a_started_call_of_a_tool_that_is_not_idempotent_is_never_run_twice(monkeypatch, fake_llm, fake_model):
    fake_llm.reply(
        {"tool_calls": [{"id": "call_del", "name": "delete_file", "arguments": {"path": "/notes.txt"}}]},
        {"text": "I could not be sure it was deleted."},
    )
    session = make_session(make_agent(capabilities=["session_file_system"]), model_id=fake_model.pk)
    files.create(session.pk, "/notes.txt", content="keep me")
    post_user(session, "Delete my notes.")
    turn = Turn.objects.get(session=session)
    die_after(monkeypatch, 5)  # claim, state, llm.started, response, tool.started: then dead
    run_turn(turn.pk, "dying-worker")
    monkeypatch.undo()
    turn = resume_elsewhere(turn)
    assert turn.status == "completed"
    result = next(m for m in messages(session) if m.role == "tool_result").content[0]
    assert result["error"] == INTERRUPTED_TOOL_ERROR and result["result"] is None
    assert files.get(session.pk, "/notes.txt") is not None  # not run by the resumed turn
    # The model got the interrupted error as the tool's result.
    tool_message = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert "interrupted" in tool_message["content"]


def test_a_started_call_of_an_idempotent_tool_runs_again_with_the_same_idempotency_key(monkeypatch):
    session = make_session(make_agent(capabilities=["test_math"]))
    post_user(session, "What is 7 + 8?")
    turn = Turn.objects.get(session=session)
    die_after(monkeypatch, 5)
    run_turn(turn.pk, "dying-worker")
    monkeypatch.undo()
    turn = resume_elsewhere(turn)
    assert_exactly_once(session, turn)
    assert Event.objects.filter(session=session, type="tool.started").count() == 2  # started, and again


def terminate_step_connections() -> int:
    """Kill the backends of this process's runtime database threads (a database restart, as they see it)."""
    pids = []
    runtime().on_each_db_thread(
        lambda: pids.append(connection.connection.get_backend_pid()) if connection.connection else None
    )
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    return len(pids)


def test_a_database_restart_mid_turn_is_ridden_out_not_a_failure():
    slow = make_model(model_id="llmsim-slow-restart", settings={"latency_ms": 1500})
    session = make_session(make_agent(capabilities=["test_math"]), model_id=slow.pk)
    post_user(session, "What is 7 + 8?")
    turn = Turn.objects.get(session=session)
    future = runtime().submit(turn.pk, "worker")
    wait_for(lambda: Event.objects.filter(session=session, type="llm.started").exists(), 30, message="llm.started")
    assert terminate_step_connections() > 0  # while the model thinks: the next step meets a dead connection
    future.result(timeout=60)
    turn.refresh_from_db()
    assert_exactly_once(session, turn)
    assert not Message.objects.filter(session=session, role="assistant", metadata__interrupted=True).exists()
