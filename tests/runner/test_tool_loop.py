"""Tool turns through litellm's real openai/ HTTP path (the fake server) and through llmsim."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from runner.runtime import runtime
from runner.toolexec import ToolPool
from runner.tools import registry
from sessions import services
from sessions.log import append_message
from sessions.models import Event, Message, Session, Turn
from tests.factories import make_agent, make_session
from tests.runner.helpers import event_types, messages, post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx")


def session_on(model, **agent_fields):
    return make_session(make_agent(**agent_fields), model_id=model.pk)


def test_two_parallel_tool_calls_then_an_answer(fake_llm, fake_model):
    fake_llm.reply(
        {
            "text": "Let me compute.",
            "tool_calls": [
                {"id": "call_a", "name": "add", "arguments": {"a": 7, "b": 8}},
                {"id": "call_b", "name": "multiply", "arguments": {"a": 3, "b": 4}},
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20},
        },
        {"text": "7 + 8 = 15 and 3 * 4 = 12.", "usage": {"prompt_tokens": 90, "completion_tokens": 12}},
    )
    session = session_on(fake_model, capabilities=["test_math"])
    post_user(session, "Compute 7+8 and 3*4")
    turn = run_active_turn(session)
    assert turn.status == "completed" and turn.iterations == 2

    stored = messages(session)
    assert [m.role for m in stored] == ["user", "assistant", "tool_result", "tool_result", "assistant"]
    assert stored[1].content == [
        {"type": "text", "text": "Let me compute."},
        {"type": "tool_call", "id": "call_a", "name": "add", "arguments": {"a": 7, "b": 8}},
        {"type": "tool_call", "id": "call_b", "name": "multiply", "arguments": {"a": 3, "b": 4}},
    ]
    results = {m.content[0]["tool_call_id"]: m.content[0] for m in stored[2:4]}
    assert results["call_a"] == {
        "type": "tool_result",
        "tool_call_id": "call_a",
        "name": "add",
        "result": {"result": 15},
        "error": None,
    }
    assert results["call_b"]["result"] == {"result": 12}
    assert stored[4].content == [{"type": "text", "text": "7 + 8 = 15 and 3 * 4 = 12."}]

    types = event_types(session)
    assert types[:4] == ["message.user", "session.status", "turn.started", "llm.started"]
    assert types[4:8] == ["llm.completed", "message.assistant", "tool.started", "tool.started"]
    assert sorted(types[8:12]) == ["message.tool_result", "message.tool_result", "tool.completed", "tool.completed"]
    assert types[12:] == ["llm.started", "llm.completed", "message.assistant", "turn.completed", "session.status"]
    completed = Event.objects.filter(session=session, type="tool.completed")
    assert {e.data["status"] for e in completed} == {"success"}

    # the second LLM call saw the tool results after the assistant's tool calls
    second = fake_llm.requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "tool"]
    assert {m["tool_call_id"]: json.loads(m["content"]) for m in second[3:]} == {
        "call_a": {"result": 15},
        "call_b": {"result": 12},
    }
    assert "add" in {t["function"]["name"] for t in fake_llm.requests[0]["tools"]}
    assert second[0]["content"].startswith("You can do arithmetic")  # capability prompt before the agent's

    session.refresh_from_db()
    assert (session.input_tokens, session.output_tokens) == (140, 32)


def test_tool_calls_run_concurrently(fake_llm, fake_model, monkeypatch):

    tool = next(t for t in registry.CAPABILITIES["test_math"].tools if t.name == "add")

    def slow_add(ctx, args):
        time.sleep(1.0)
        return {"result": args["a"] + args["b"]}

    monkeypatch.setattr(tool, "func", slow_add)
    calls = [{"id": f"c{i}", "name": "add", "arguments": {"a": i, "b": 1}} for i in range(3)]
    fake_llm.reply({"tool_calls": calls}, {"text": "done"})
    session = session_on(fake_model, capabilities=["test_math"])
    post_user(session, "go")
    started = time.monotonic()
    run_active_turn(session)
    assert time.monotonic() - started < 2.5  # three 1 s tools, not 3 s in a row
    assert Message.objects.filter(session=session, role="tool_result").count() == 3


def test_unknown_tool_bad_arguments_and_tool_errors_go_back_to_the_model(fake_llm, fake_model):
    fake_llm.reply(
        {
            "tool_calls": [
                {"id": "c1", "name": "no_such_tool", "arguments": {}},
                {"id": "c2", "name": "add", "arguments": "{not json"},
                {"id": "c3", "name": "divide", "arguments": {"a": 1, "b": 0}},
            ]
        },
        {"text": "Some tools failed."},
    )
    session = session_on(fake_model, capabilities=["test_math"])
    post_user(session, "go")
    turn = run_active_turn(session)
    assert turn.status == "completed"
    errors = {m.content[0]["tool_call_id"]: m.content[0]["error"] for m in messages(session) if m.role == "tool_result"}
    assert errors["c1"] == "unknown tool: no_such_tool"
    assert errors["c2"].startswith("arguments are not valid JSON")
    assert errors["c3"] == "division by zero"
    statuses = {
        e.data["tool_call_id"]: e.data["status"] for e in Event.objects.filter(session=session, type="tool.completed")
    }
    assert statuses == {"c1": "error", "c2": "error", "c3": "error"}
    tool_messages = [m for m in fake_llm.requests[1]["messages"] if m["role"] == "tool"]
    assert json.loads(tool_messages[2]["content"]) == {"error": "division by zero"}


def test_a_tool_over_its_time_limit_is_an_error_result(fake_llm, fake_model, monkeypatch, settings):

    settings.TOOL_TIMEOUT_SECONDS = 0.5
    tool = next(t for t in registry.CAPABILITIES["test_math"].tools if t.name == "subtract")
    monkeypatch.setattr(tool, "func", lambda ctx, args: time.sleep(3))
    fake_llm.reply({"tool_calls": [{"id": "slow", "name": "subtract", "arguments": {"a": 1, "b": 1}}]}, {"text": "ok"})
    session = session_on(fake_model, capabilities=["test_math"])
    post_user(session, "go")
    started = time.monotonic()
    assert run_active_turn(session).status == "completed"
    assert time.monotonic() - started < 2.5
    result = next(m for m in messages(session) if m.role == "tool_result").content[0]
    assert result["error"] == "tool timed out after 0.5 s"


def test_stuck_tool_calls_do_not_block_a_later_call_of_another_session(fake_llm, fake_model, monkeypatch, settings):
    """Three calls that never return (a parser deep in C code) held every tool thread of a worker, so every
    later call of every session timed out waiting for one. Stuck calls are shed: the later call runs."""
    settings.TOOL_TIMEOUT_SECONDS = 0.5
    release = threading.Event()
    monkeypatch.setattr(runtime(), "tool_pool", ToolPool(threads=3, stuck_max=3))
    tool = next(t for t in registry.CAPABILITIES["test_math"].tools if t.name == "subtract")
    monkeypatch.setattr(tool, "func", lambda ctx, args: release.wait(60))
    try:
        for i in range(3):
            fake_llm.reply({"tool_calls": [{"id": f"stuck{i}", "name": "subtract", "arguments": {"a": 1, "b": 1}}]})
            fake_llm.reply({"text": "gave up"})
            stuck = session_on(fake_model, capabilities=["test_math"])
            post_user(stuck, "go")
            assert run_active_turn(stuck).status == "completed"
            result = next(m for m in messages(stuck) if m.role == "tool_result").content[0]
            assert result["error"] == "tool timed out after 0.5 s"
        fake_llm.reply({"tool_calls": [{"id": "later", "name": "add", "arguments": {"a": 7, "b": 8}}]}, {"text": "15"})
        other = session_on(fake_model, capabilities=["test_math"])
        post_user(other, "7 + 8?")
        assert run_active_turn(other).status == "completed"
        result = next(m for m in messages(other) if m.role == "tool_result").content[0]
        assert result["error"] is None and result["result"] == {"result": 15}
    finally:
        release.set()


def test_max_iterations_ends_a_runaway_turn(fake_llm, fake_model):
    for i in range(5):
        fake_llm.reply({"tool_calls": [{"id": f"c{i}", "name": "add", "arguments": {"a": i, "b": 1}}]})
    session = session_on(fake_model, capabilities=["test_math"], max_iterations=3)
    post_user(session, "loop forever")
    turn = run_active_turn(session)
    session.refresh_from_db()
    assert turn.status == "failed" and turn.iterations == 3
    assert session.status == "failed" and session.error["code"] == "max_iterations"
    assert Event.objects.get(session=session, type="turn.failed").data["error"]["code"] == "max_iterations"
    assert len(fake_llm.requests) == 3


@pytest.mark.parametrize("agent_limit,controls_limit", [(5, 2), (1, 3)], ids=["lower", "higher"])
def test_controls_max_iterations_overrides_the_agents_limit(fake_llm, fake_model, agent_limit, controls_limit):
    for i in range(6):
        fake_llm.reply({"tool_calls": [{"id": f"c{i}", "name": "add", "arguments": {"a": i, "b": 1}}]})
    session = session_on(fake_model, capabilities=["test_math"], max_iterations=agent_limit)
    post_user(session, "loop forever", controls={"max_iterations": controls_limit})
    turn = run_active_turn(session)
    assert turn.status == "failed" and turn.iterations == controls_limit
    assert turn.error == {
        "code": "max_iterations",
        "message": f"The turn reached its limit of {controls_limit} LLM calls",
    }
    assert len(fake_llm.requests) == controls_limit


def test_turn_max_iterations_applies_when_the_agent_sets_no_limit(fake_llm, fake_model, settings):
    settings.TURN_MAX_ITERATIONS = 2
    for i in range(4):
        fake_llm.reply({"tool_calls": [{"id": f"c{i}", "name": "add", "arguments": {"a": i, "b": 1}}]})
    session = session_on(fake_model, capabilities=["test_math"])
    post_user(session, "loop forever")
    turn = run_active_turn(session)
    assert turn.status == "failed" and turn.iterations == 2 and turn.error["code"] == "max_iterations"
    assert len(fake_llm.requests) == 2


def test_conversation_carries_into_the_second_turn(fake_llm, fake_model):
    fake_llm.reply({"text": "Nice to meet you, Ada."}, {"text": "Your name is Ada."})
    session = session_on(fake_model)
    post_user(session, "My name is Ada.")
    run_active_turn(session)
    post_user(session, "What is my name?")
    run_active_turn(session)
    history = fake_llm.requests[1]["messages"]
    assert [(m["role"], m["content"]) for m in history[1:]] == [
        ("user", "My name is Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "What is my name?"),
    ]


def test_text_and_image_parts_reach_the_model_in_openai_form(fake_llm, fake_model):
    session = session_on(fake_model)
    services.message_post(
        session=Session.objects.select_related("agent").get(pk=session.pk),
        content=[
            {"type": "text", "text": "look"},
            {"type": "image", "url": "https://example.com/cat.png"},
            {"type": "image", "base64": "iVBORw0KGgo=", "media_type": "image/png"},
        ],
    )
    run_active_turn(session)
    services.message_post(
        session=Session.objects.select_related("agent").get(pk=session.pk),
        content=[{"type": "text", "text": "first part"}, {"type": "text", "text": "second part"}],
    )
    run_active_turn(session)
    sent = [m for m in fake_llm.requests[1]["messages"] if m["role"] == "user"]
    assert sent[0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    assert sent[1]["content"] == "first part\n\nsecond part"  # text alone stays a plain string


def test_llmsim_uses_test_math_for_arithmetic():
    session = make_session(make_agent(capabilities=["test_math"]))
    post_user(session, "What is 7 + 8?")
    run_active_turn(session)
    stored = messages(session)
    assert [m.role for m in stored] == ["user", "assistant", "tool_result", "assistant"]
    call = stored[1].content[0]
    assert call["type"] == "tool_call" and call["name"] == "add" and call["arguments"] == {"a": 7, "b": 8}
    assert stored[2].content[0]["result"] == {"result": 15}
    assert "15" in stored[3].content[0]["text"]


def test_llmsim_answers_time_questions_with_the_tool():
    session = make_session(make_agent(capabilities=["current_time"]))
    post_user(session, "What time is it?")
    run_active_turn(session)
    stored = messages(session)
    assert stored[1].content[0]["name"] == "get_current_time"
    assert stored[3].content[0]["text"].startswith("The current time is")


def test_a_resumed_turn_runs_unanswered_tool_calls_first(fake_llm, fake_model):
    """A worker died after storing the tool calls and before their results."""

    fake_llm.reply({"text": "15"})
    session = session_on(fake_model, capabilities=["test_math"])
    post_user(session, "7+8")
    turn = Turn.objects.get(session=session)
    append_message(
        session_id=session.pk,
        turn_id=turn.pk,
        role="assistant",
        content=[{"type": "tool_call", "id": "c9", "name": "add", "arguments": {"a": 7, "b": 8}}],
    )
    Turn.objects.filter(pk=turn.pk).update(
        status="running",
        iterations=1,
        lease_owner="dead-worker",
        started_at=turn.created_at,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    turn = run_active_turn(session)
    assert turn.status == "completed" and turn.iterations == 2
    assert [m.role for m in messages(session)] == ["user", "assistant", "tool_result", "assistant"]
    assert len(fake_llm.requests) == 1  # the stored LLM response was not asked again
