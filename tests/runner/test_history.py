"""The conversation sent to the model, rebuilt from stored messages; and tool-call arguments as the
model sends them. Pure functions over unsaved messages: no services needed."""

import json

import pytest

from runner import history
from runner.toolexec import parse_arguments
from sessions.models import Message


def msg(role: str, *content: dict) -> Message:
    return Message(role=role, content=list(content))


def user(text: str) -> Message:
    return msg("user", {"type": "text", "text": text})


def call(call_id: str, name: str = "add", **arguments) -> dict:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def result(call_id: str, value=None, error=None, name: str = "add") -> Message:
    part = {"type": "tool_result", "tool_call_id": call_id, "name": name, "result": value, "error": error}
    return msg("tool_result", part)


def test_system_prompt_first_then_the_conversation_in_order():
    built = history.build("Be brief.", [user("hi"), msg("assistant", {"type": "text", "text": "hello"}), user("bye")])
    assert built == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]


def test_no_system_message_without_a_prompt():
    assert history.build("", [user("hi")]) == [{"role": "user", "content": "hi"}]


def test_tool_results_follow_their_call_even_when_a_user_message_came_between():
    messages = [
        user("add things"),
        msg("assistant", {"type": "text", "text": "On it."}, call("c1", a=1, b=2), call("c2", a=3, b=4)),
        user("and hurry"),  # posted while the tools ran
        result("c2", {"result": 7}),
        result("c1", {"result": 3}),
    ]
    built = history.build("", messages)
    assert [m["role"] for m in built] == ["user", "assistant", "tool", "tool", "user"]
    assert built[1] == {
        "role": "assistant",
        "content": "On it.",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": json.dumps({"a": 1, "b": 2})}},
            {"id": "c2", "type": "function", "function": {"name": "add", "arguments": json.dumps({"a": 3, "b": 4})}},
        ],
    }
    assert built[2] == {"role": "tool", "tool_call_id": "c1", "content": '{"result": 3}'}
    assert built[3] == {"role": "tool", "tool_call_id": "c2", "content": '{"result": 7}'}


def test_an_assistant_message_of_tool_calls_only_has_null_content():
    built = history.build("", [user("x"), msg("assistant", call("c1")), result("c1", 1)])
    assert built[1]["content"] is None and built[1]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_a_tool_call_without_a_stored_result_is_answered_with_an_error():
    built = history.build("", [user("x"), msg("assistant", call("c1"))])
    assert built[-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": json.dumps({"error": "no result was recorded for this tool call"}),
    }


@pytest.mark.parametrize(
    "value,error,content",
    [
        ("plain text", None, "plain text"),  # a string goes as it is, not JSON-quoted
        ({"result": 1}, None, '{"result": 1}'),
        ([1, 2], None, "[1, 2]"),
        (None, "division by zero", '{"error": "division by zero"}'),
    ],
)
def test_tool_result_content(value, error, content):
    built = history.build("", [user("x"), msg("assistant", call("c1")), result("c1", value, error)])
    assert built[-1]["content"] == content


def test_unanswered_tool_calls_are_those_of_the_last_assistant_message_without_a_result():
    messages = [
        user("x"),
        msg("assistant", call("old")),  # an earlier step's call, unanswered: not this step's business
        user("y"),
        msg("assistant", {"type": "text", "text": "two tools"}, call("c1"), call("c2")),
        result("c1", 1),
    ]
    assert [p["id"] for p in history.unanswered_tool_calls(messages)] == ["c2"]
    assert history.unanswered_tool_calls(messages + [result("c2", 2)]) == []
    assert history.unanswered_tool_calls([user("x")]) == []


@pytest.mark.parametrize(
    "raw,parsed",
    [
        ({"a": 1}, ({"a": 1}, None)),
        ('{"a": 1}', ({"a": 1}, None)),
        ("", ({}, None)),  # a tool without parameters, called with no arguments at all
        (None, ({}, None)),
        ("[1, 2]", ({}, "arguments must be a JSON object")),
        ('"text"', ({}, "arguments must be a JSON object")),
    ],
)
def test_parse_arguments(raw, parsed):
    assert parse_arguments(raw) == parsed


def test_arguments_that_are_not_json_are_an_error_for_the_model():
    arguments, error = parse_arguments("{not json")
    assert arguments == {} and error.startswith("arguments are not valid JSON: ")
