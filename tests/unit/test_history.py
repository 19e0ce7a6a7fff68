"""The conversation sent to the model, rebuilt from stored messages (unsaved Message objects here)."""

import json

from runner.compaction import prompt
from runner.history import build, tool_result_text, unanswered_tool_calls, units
from sessions.models import Message


def user(*parts) -> Message:
    return Message(role=Message.Role.USER, content=list(parts))


def assistant(*parts) -> Message:
    return Message(role=Message.Role.ASSISTANT, content=list(parts))


def results(*parts) -> Message:
    return Message(role=Message.Role.TOOL_RESULT, content=list(parts))


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def call(call_id: str, name: str = "add", arguments=None) -> dict:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def result(call_id: str, value=None, error=None) -> dict:
    """A tool_result part as the loop stores it: `error` is there, null on success."""
    return {"type": "tool_result", "tool_call_id": call_id, "name": "add", "result": value, "error": error}


def test_the_system_prompt_comes_first():
    assert build("Be brief.", [user(text("hi"))]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]


def test_an_empty_system_prompt_is_left_out():
    assert build("", [user(text("hi"))]) == [{"role": "user", "content": "hi"}]


def test_text_parts_of_a_user_message_are_joined_by_a_blank_line():
    assert build("", [user(text("one"), text("two"))]) == [{"role": "user", "content": "one\n\ntwo"}]


def test_a_user_message_with_images_keeps_its_parts_in_order():
    message = user(
        text("look"),
        {"type": "image", "url": "https://example.com/a.png"},
        {"type": "image", "media_type": "image/png", "base64": "iVBO"},
    )
    assert build("", [message]) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
            ],
        }
    ]


def test_an_assistant_text_answer():
    assert build("", [assistant(text("Hel"), text("lo"))]) == [{"role": "assistant", "content": "Hello"}]


def test_tool_calls_carry_json_arguments_and_their_results_follow():
    messages = [
        user(text("4+4?")),
        assistant(call("c1", "add", {"a": 4, "b": 4}), call("c2", "now", None)),
        results(result("c1", {"sum": 8}), result("c2", "12:00")),
    ]
    assert build("", messages) == [
        {"role": "user", "content": "4+4?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 4, "b": 4}'}},
                {"id": "c2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"sum": 8}'},
        {"role": "tool", "tool_call_id": "c2", "content": "12:00"},
    ]


def test_assistant_text_beside_tool_calls_is_kept():
    built = build("", [assistant(text("Let me add."), call("c1")), results(result("c1", 8))])
    assert built[0]["content"] == "Let me add." and built[0]["tool_calls"][0]["id"] == "c1"
    assert built[1] == {"role": "tool", "tool_call_id": "c1", "content": "8"}


def test_results_follow_their_call_even_when_a_user_message_was_stored_between():
    messages = [assistant(call("c1")), user(text("also this")), results(result("c1", "done"))]
    assert [m["role"] for m in build("", messages)] == ["assistant", "tool", "user"]
    assert build("", messages)[1] == {"role": "tool", "tool_call_id": "c1", "content": "done"}


def test_a_call_without_a_stored_result_gets_an_error_result():
    built = build("", [assistant(call("c1"))])
    assert built[1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": json.dumps({"error": "no result was recorded for this tool call"}),
    }


def test_a_tool_error_is_sent_as_json():
    assert tool_result_text(result("c1", error="division by zero")) == '{"error": "division by zero"}'


def test_a_string_result_is_sent_as_is_and_anything_else_as_json():
    assert tool_result_text(result("c1", "plain")) == "plain"
    assert tool_result_text(result("c1", {"a": [1, 2]})) == '{"a": [1, 2]}'
    assert tool_result_text(result("c1", 3)) == "3"
    assert tool_result_text(result("c1", None)) == "null"


def test_unanswered_calls_are_those_of_the_last_assistant_without_a_result():
    messages = [
        assistant(call("old")),  # an earlier turn's call: not resumed
        results(result("old", 1)),
        user(text("next")),
        assistant(call("c1"), call("c2"), call("c3")),
        results(result("c2", "two")),
    ]
    assert [c["id"] for c in unanswered_tool_calls(messages)] == ["c1", "c3"]


def test_nothing_is_unanswered_when_every_call_has_a_result_or_there_is_no_assistant():
    assert unanswered_tool_calls([assistant(call("c1")), results(result("c1", 1))]) == []
    assert unanswered_tool_calls([user(text("hi"))]) == []
    assert unanswered_tool_calls([]) == []


def test_only_the_last_assistant_message_counts_for_unanswered_calls():
    messages = [assistant(call("lost")), user(text("hi")), assistant(text("plain answer"))]
    assert unanswered_tool_calls(messages) == []


def numbered(sequence: int, message: Message) -> Message:
    message.sequence = sequence
    return message


def test_after_a_compaction_its_summary_stands_for_what_it_covers_and_the_latest_user_message_stays_whole():
    messages = [
        numbered(1, user(text("total is 42"))),
        numbered(2, assistant(call("c1"))),
        numbered(3, user(text("the latest question"))),  # posted while the tool ran
        numbered(4, results(result("c1", 15))),
    ]
    covered = build("Be brief.", messages, {"summary": "the total is 42", "through_sequence": 4})
    assert covered == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": prompt.SUMMARY_HEADER + "the total is 42"},
        {"role": "user", "content": "the latest question"},
    ]
    later = [*messages, numbered(5, assistant(text("15"))), numbered(6, user(text("next")))]
    built = build("", later, {"summary": "s", "through_sequence": 4})
    assert built == [
        {"role": "user", "content": prompt.SUMMARY_HEADER + "s"},
        {"role": "assistant", "content": "15"},
        {"role": "user", "content": "next"},
    ]


def test_the_units_of_a_tool_round_span_its_call_and_its_result():
    messages = [
        numbered(1, user(text("x"))),
        numbered(2, assistant(call("c1"))),
        numbered(3, user(text("y"))),
        numbered(4, results(result("c1", 1))),
    ]
    spans = [(u.first, u.last, u.user) for u in units(messages)]
    assert spans == [(1, 1, True), (2, 4, False), (3, 3, True)]
