"""What a chat front-end's request stores, with the real services: each message once however often the
history comes, sessions for AG-UI threads, approvals answered in the history, front-end tools and the client's
results for their calls (turns run in this process against the fake OpenAI-compatible server)."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from everruns.core.errors import ValidationError
from sessions.chat.services import chat_post, thread_session
from sessions.models import Event, Message, Session, Turn
from tests.factories import make_agent, make_session
from tests.runner.helpers import run_active_turn

pytestmark = pytest.mark.usefixtures("seeded")


def user(id: str, text: str) -> dict:
    return {"id": id, "role": "user", "content": [{"type": "text", "text": text}]}


def test_a_thread_names_one_session_of_its_agent_made_on_first_use():
    agent, other = make_agent(), make_agent()
    first = thread_session(agent=agent, thread_id="conversation-1")
    assert thread_session(agent=agent, thread_id="conversation-1") == first
    assert first.external_id == "conversation-1"
    assert thread_session(agent=other, thread_id="conversation-1") != first
    assert thread_session(agent=agent, thread_id=str(first.pk)) == first  # a session id names that session
    assert Session.objects.filter(agent=agent).count() == 1


def test_the_whole_history_again_stores_nothing_twice():
    session = make_session()
    start, turn_id = chat_post(session=session, messages=[user("a", "one")], approvals=[])
    assert start == 0 and turn_id is not None
    assert Message.objects.filter(session=session).count() == 1
    again = chat_post(session=session, messages=[user("a", "one")], approvals=[])
    assert Message.objects.filter(session=session).count() == 1
    assert again[1] == turn_id  # the turn still runs (no worker here): the run is its rest
    chat_post(session=session, messages=[user("a", "one"), user("b", "two")], approvals=[])
    stored = Message.objects.filter(session=session).order_by("sequence")
    assert [m.metadata["client_message_id"] for m in stored] == ["a", "b"]


def test_only_messages_after_the_last_one_the_session_has_are_new():
    session = make_session()
    chat_post(session=session, messages=[user("a", "one")], approvals=[])
    ours = str(Message.objects.get(session=session).pk)
    history = [
        user("x", "old, not ours"),
        {"id": ours, "role": "user"},
        {"id": "m", "role": "assistant"},
        user("c", "new"),
    ]
    chat_post(session=session, messages=history, approvals=[])
    texts = [m.content[0]["text"] for m in Message.objects.filter(session=session).order_by("sequence")]
    assert texts == ["one", "new"]


def test_a_message_the_session_has_is_not_rewritten_by_a_client_that_changed_it():
    session = make_session()
    chat_post(session=session, messages=[user("a", "one")], approvals=[])
    chat_post(session=session, messages=[user("a", "changed")], approvals=[])
    assert [m.content[0]["text"] for m in Message.objects.filter(session=session)] == ["one"]


def test_nothing_new_and_nothing_running_runs_nothing():
    session = make_session()
    assert chat_post(session=session, messages=[{"id": "s", "role": "system"}], approvals=[]) == (None, None)


def test_an_empty_user_message_is_a_validation_error_and_stores_nothing():
    session = make_session()
    with pytest.raises(ValidationError):
        chat_post(session=session, messages=[user("a", "  ")], approvals=[])
    assert not Message.objects.filter(session=session).exists()


# --- front-end tools ----------------------------------------------------------------------------------
CHART = {"name": "show_chart", "description": "Show a chart.", "parameters": {"type": "object", "properties": {}}}


def tool(id: str, call_id: str, content: str = '{"shown":true}', error: str | None = None) -> dict:
    return {"id": id, "role": "tool", "tool_call_id": call_id, "content": content, "error": error}


def assistant_of(session, *call_ids: str) -> dict:
    """The session's last assistant message as the client has it (our id, the calls it made)."""
    last = Message.objects.filter(session=session, role="assistant").order_by("-sequence").first()
    return {"id": str(last.pk), "role": "assistant", "tool_call_ids": list(call_ids)}


@pytest.fixture
def waiting(seeded_tx, runtime_connections, fake_llm, fake_model):
    """A session whose turn ended on a call of the client's `show_chart` (the model's next answer is scripted)."""
    fake_llm.reply(
        {"tool_calls": [{"id": "call_chart", "name": "show_chart", "arguments": {"kind": "bar"}}]},
        {"text": "The chart is on your screen."},
    )
    session = Session.objects.select_related("agent").get(pk=make_session(model_id=fake_model.pk).pk)
    chat_post(session=session, messages=[user("u1", "Chart it")], approvals=[], client_tools=[CHART])
    assert Turn.objects.get(session=session).client_tools == [CHART]
    assert run_active_turn(session).status == "completed"
    return session


def test_the_clients_tool_message_is_the_calls_result_and_the_model_goes_on(waiting, fake_llm):
    history = [user("u1", "Chart it"), assistant_of(waiting, "call_chart"), tool("t1", "call_chart")]
    start, turn_id = chat_post(session=waiting, messages=history, approvals=[], client_tools=[CHART])
    result = Message.objects.get(session=waiting, role="tool_result")
    assert result.content == [
        {
            "type": "tool_result",
            "tool_call_id": "call_chart",
            "name": "show_chart",
            "result": '{"shown":true}',
            "error": None,
        }
    ]
    turn = Turn.objects.get(pk=turn_id)
    assert turn.client_tools == [CHART] and str(result.pk) in turn.input_message_ids
    assert Event.objects.get(session=waiting, type="message.tool_result").sequence == start + 1  # the run shows it
    run_active_turn(waiting)
    assert Message.objects.filter(session=waiting).order_by("sequence").last().content[0]["text"] == (
        "The chart is on your screen."
    )
    assert any(m["role"] == "tool" and m["tool_call_id"] == "call_chart" for m in fake_llm.requests[-1]["messages"])


def test_a_tool_message_sent_again_is_not_stored_twice(waiting):
    history = [user("u1", "Chart it"), assistant_of(waiting, "call_chart"), tool("t1", "call_chart")]
    chat_post(session=waiting, messages=history, approvals=[], client_tools=[CHART])
    run_active_turn(waiting)
    count = Message.objects.filter(session=waiting).count()
    # The same run again (a retry), then the next one with the answer and a new question.
    assert chat_post(session=waiting, messages=history, approvals=[], client_tools=[CHART]) == (None, None)
    later = [*history, assistant_of(waiting), user("u2", "Thanks")]
    chat_post(session=waiting, messages=later, approvals=[], client_tools=[CHART])
    roles = list(Message.objects.filter(session=waiting).order_by("sequence").values_list("role", flat=True))
    assert len(roles) == count + 1 and roles == ["user", "assistant", "tool_result", "assistant", "user"]


def test_the_clients_error_is_the_calls_error(waiting):
    history = [user("u1", "Chart it"), assistant_of(waiting, "call_chart"), tool("t1", "call_chart", "", "closed")]
    chat_post(session=waiting, messages=history, approvals=[])
    part = Message.objects.get(session=waiting, role="tool_result").content[0]
    assert (part["result"], part["error"]) == ("", "closed")


def test_a_tool_message_for_no_waiting_call_is_invalid_and_stores_nothing(waiting):
    history = [user("u1", "Chart it"), assistant_of(waiting, "call_chart"), tool("t1", "call_other"), user("u2", "x")]
    with pytest.raises(ValidationError) as raised:
        chat_post(session=waiting, messages=history, approvals=[])
    assert "messages.t1.toolCallId" in raised.value.details
    assert list(Message.objects.filter(session=waiting).values_list("role", flat=True)) == ["user", "assistant"]


def test_tool_messages_of_the_clients_own_history_are_not_ours_to_store():
    session = make_session()
    history = [
        {"id": "a", "role": "assistant", "tool_call_ids": ["call_elsewhere"]},
        tool("t", "call_elsewhere"),
        user("u", "hi"),
    ]
    chat_post(session=session, messages=history, approvals=[])
    assert list(Message.objects.filter(session=session).values_list("role", flat=True)) == ["user"]


def test_results_of_two_calls_in_one_request_reach_one_turn_together(
    seeded_tx, runtime_connections, fake_llm, fake_model
):
    fake_llm.reply(
        {
            "tool_calls": [
                {"id": "call_a", "name": "show_chart", "arguments": {"kind": "bar"}},
                {"id": "call_b", "name": "show_chart", "arguments": {"kind": "pie"}},
            ]
        },
        {"text": "Both charts are up."},
    )
    session = Session.objects.select_related("agent").get(pk=make_session(model_id=fake_model.pk).pk)
    chat_post(session=session, messages=[user("u1", "Two charts")], approvals=[], client_tools=[CHART])
    run_active_turn(session)
    pending = Event.objects.get(session=session, type="turn.completed").data["pending_tool_calls"]
    assert [c["id"] for c in pending] == ["call_a", "call_b"]
    answers = [tool("ta", "call_a"), tool("tb", "call_b", '"pie shown"')]
    history = [user("u1", "Two charts"), assistant_of(session, "call_a", "call_b"), *answers]
    chat_post(session=session, messages=history, approvals=[], client_tools=[CHART])
    assert Turn.objects.filter(session=session).count() == 2  # one turn for both results
    run_active_turn(session)
    sent = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in sent] == ["call_a", "call_b"]
    assert Message.objects.filter(session=session).order_by("sequence").last().content[0]["text"] == (
        "Both charts are up."
    )


def test_a_tool_message_for_a_call_the_server_runs_is_invalid(seeded_tx, runtime_connections):
    agent = make_agent(capabilities=["test_math"], tool_policy={"add": "ask"})
    session = Session.objects.select_related("agent").get(pk=make_session(agent).pk)
    chat_post(session=session, messages=[user("u1", "What is 7 + 8?")], approvals=[])
    run_active_turn(session)  # waits for the approval of its call of `add`
    call_id = Message.objects.get(session=session, role="assistant").content[0]["id"]
    history = [user("u1", "What is 7 + 8?"), assistant_of(session, call_id), tool("t1", call_id, "15")]
    with pytest.raises(ValidationError):
        chat_post(session=session, messages=history, approvals=[])
    assert not Message.objects.filter(session=session, role="tool_result").exists()


def queries_of_a_post(session, calls: list[str]) -> int:
    history = [{"id": "a", "role": "assistant", "tool_call_ids": calls}]
    history += [tool(f"t{i}", call) for i, call in enumerate(calls)] + [user("u", "hi")]
    with CaptureQueriesContext(connection) as queries:
        chat_post(session=session, messages=history, approvals=[])
    return len(queries)


def test_a_long_history_of_tool_messages_is_checked_in_as_many_queries_as_a_short_one():
    """20,000 tool messages of the client's history (an OR of a containment test per message took 19 s of a
    web thread for 50,000): their results and pending calls are looked up in one IN list each."""
    short = queries_of_a_post(make_session(), ["call_x"])
    session = make_session()
    started = time.monotonic()
    assert queries_of_a_post(session, [f"call_{i}" for i in range(20_000)]) == short
    assert time.monotonic() - started < 3  # a regression guard, not a benchmark
    assert list(Message.objects.filter(session=session).values_list("role", flat=True)) == ["user"]
