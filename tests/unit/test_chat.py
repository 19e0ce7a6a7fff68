"""The chat front-ends' mappings, pure: a run's events in, AG-UI events and AI SDK UI message chunks out, and the
cursor that lets a dropped response go on with nothing lost and nothing shown twice."""

import json

import pytest

from everruns.core.errors import Conflict, PayloadTooLarge, ValidationError
from sessions.chat import agui, aisdk
from sessions.chat.run import Cursor

M1, M2 = "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002"
TOOL_MESSAGE = "01900000-0000-7000-8000-0000000000aa"


def ev(sequence: int, type: str, **data) -> dict:
    return {"type": type, "sequence": sequence, "data": data}


def delta(text: str, offset: int, message_id: str = M2) -> dict:
    return {
        "type": "message.delta",
        "sequence": None,
        "data": {"message_id": message_id, "delta": text, "offset": offset},
    }


def assistant(sequence: int, message_id: str, text: str = "", calls: list | None = None, **metadata) -> dict:
    content = ([{"type": "text", "text": text}] if text else []) + [
        {"type": "tool_call", "id": c, "name": "add", "arguments": {"a": 7, "b": 8}} for c in calls or []
    ]
    return ev(sequence, "message.assistant", message={"id": message_id, "content": content, "metadata": metadata})


USAGE = {"input_tokens": 10, "output_tokens": 2}
TOOL_TURN = [
    ev(1, "message.user", message={"id": "u"}),
    ev(2, "session.status", status="running", previous="pending", error=None),
    ev(3, "turn.started", input_message_ids=["u"]),
    ev(4, "llm.started", iteration=1, model="llmsim-1"),
    ev(5, "llm.completed", iteration=1, model="llmsim-1", usage=USAGE),
    assistant(6, M1, calls=["call_1"]),
    ev(7, "tool.started", tool_call_id="call_1", name="add", arguments={"a": 7, "b": 8}),
    ev(
        8,
        "message.tool_result",
        message={"id": TOOL_MESSAGE, "content": [{"type": "tool_result", "tool_call_id": "call_1", "result": 15}]},
    ),
    ev(9, "tool.completed", tool_call_id="call_1", status="success"),
    ev(10, "llm.started", iteration=2, model="llmsim-1"),
    delta("7 + ", 0),
    delta("8 = ", 4),
    ev(11, "llm.completed", iteration=2, model="llmsim-1", usage=USAGE),
    assistant(12, M2, "7 + 8 = 15."),
    ev(13, "turn.completed", iterations=2, usage=USAGE),
    ev(14, "session.status", status="pending", previous="running", error=None),
]


def agui_run(start: int = 0) -> agui.AguiRun:
    return agui.AguiRun(start=start, thread_id="t", run_id="r", session_id="s", turn_id="turn")


def ui_run(start: int = 0) -> aisdk.UiMessageRun:
    return aisdk.UiMessageRun(start=start, session_id="s", turn_id="turn")


def types(frames) -> list[str]:
    out = []
    for message, _ in frames:
        kind = message["type"] if isinstance(message, dict) else message.type.value
        out.append(f"CUSTOM:{message.name}" if kind == "CUSTOM" else kind)
    return out


def feed_all(view, events) -> list:
    frames = []
    for event in events:
        frames += view.feed(event)
    return frames


def dump(message) -> dict:
    return message if isinstance(message, dict) else json.loads(message.model_dump_json(by_alias=True))


# --- the cursor -----------------------------------------------------------------------------------


def test_a_cursor_is_four_numbers_and_reads_back():
    cursor = Cursor(3, 17, 42, 2)
    assert str(cursor) == "3-17-42-2" and Cursor.parse("3-17-42-2") == cursor


@pytest.mark.parametrize("raw", [None, "", "7", "1-2-3", "a-b-c-d", "5-4-0-0", "-1-2-0-0", "1-2-3-4-5", "１-2-0-0"])
def test_a_cursor_that_this_stream_did_not_send_is_refused(raw):
    assert Cursor.parse(raw) is None


# --- AG-UI ----------------------------------------------------------------------------------------


def test_agui_tool_turn_events_in_order():
    frames = feed_all(agui_run(), TOOL_TURN)
    assert types(frames) == [
        "STEP_STARTED",
        "CUSTOM:llm.completed",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "STEP_FINISHED",
        "TOOL_CALL_RESULT",
        "STEP_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_CONTENT",
        "CUSTOM:llm.completed",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "STEP_FINISHED",
        "RUN_FINISHED",
    ]
    messages = [dump(m) for m, _ in frames]
    assert messages[2] == {
        "type": "TOOL_CALL_START",
        "toolCallId": "call_1",
        "toolCallName": "add",
        "parentMessageId": M1,
    }
    assert json.loads(messages[3]["delta"]) == {"a": 7, "b": 8}
    assert messages[6] == {
        "type": "TOOL_CALL_RESULT",
        "messageId": TOOL_MESSAGE,
        "toolCallId": "call_1",
        "content": "15",
        "role": "tool",
    }
    text = [m["delta"] for m in messages if m["type"] == "TEXT_MESSAGE_CONTENT"]
    assert text == ["7 + ", "8 = ", "15."]  # streamed live, the rest from the stored message
    assert messages[-1]["usage"] == [{"model": "llmsim-1", "inputTokens": 20, "outputTokens": 4, "totalTokens": 24}]


def test_agui_failed_turn_is_a_run_error():
    frames = feed_all(
        agui_run(),
        [
            ev(1, "llm.started", iteration=1),
            ev(2, "turn.failed", error={"code": "llm_provider_error", "message": "boom"}),
        ],
    )
    assert types(frames) == ["STEP_STARTED", "STEP_FINISHED", "RUN_ERROR"]
    assert dump(frames[-1][0]) == {"type": "RUN_ERROR", "message": "boom", "code": "llm_provider_error"}


def test_agui_cancelled_turn_finishes_with_the_cancelled_outcome_and_the_kept_text():
    events = [
        ev(1, "llm.started", iteration=1),
        delta("Once", 0),
        assistant(2, M1, "Once upon", cancelled=True),
        ev(3, "turn.cancelled", reason="stop"),
    ]
    frames = feed_all(agui_run(), events)
    assert types(frames) == [
        "STEP_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "STEP_FINISHED",
        "RUN_FINISHED",
    ]
    assert [dump(m)["delta"] for m, _ in frames if types([(m, 0)]) == ["TEXT_MESSAGE_CONTENT"]] == ["Once", " upon"]
    assert dump(frames[-1][0])["outcome"] == {"type": "cancelled"}


def test_agui_approval_ends_the_run_with_an_interrupt():
    events = [
        ev(1, "llm.started", iteration=1),
        assistant(2, M1, calls=["call_1"]),
        ev(3, "tool.approval_requested", tool_call_id="call_1", name="add", arguments={"a": 7, "b": 8}),
        ev(4, "session.status", status="waiting", previous="running", error=None),
    ]
    frames = feed_all(agui_run(), events)
    assert types(frames)[-2:] == ["CUSTOM:tool.approval_requested", "RUN_FINISHED"]
    (interrupt,) = dump(frames[-1][0])["outcome"]["interrupts"]
    assert interrupt["id"] == interrupt["toolCallId"] == "call_1" and interrupt["reason"] == "tool_approval"
    assert interrupt["responseSchema"]["required"] == ["approved"]


def test_agui_every_event_with_a_cursor_carries_it_in_its_metadata():
    frames = feed_all(agui_run(), TOOL_TURN[:6])
    for message, cursor in frames:
        sent = agui.encode(message, cursor)
        assert sent.startswith(f"id: {cursor}\ndata: ")
        assert json.loads(sent.split("data: ", 1)[1])["metadata"]["everruns"]["cursor"] == str(cursor)


CHART_CALL = {"type": "tool_call", "id": "call_chart", "name": "show_chart", "arguments": {"kind": "bar"}}
PENDING = {"id": "call_chart", "name": "show_chart", "arguments": {"kind": "bar"}, "argument_error": None}


def test_agui_a_call_to_a_front_end_tool_ends_the_run_with_the_call_pending():
    events = [
        ev(1, "llm.started", iteration=1, model="fake"),
        ev(2, "llm.completed", iteration=1, model="fake", usage=USAGE),
        ev(3, "message.assistant", message={"id": M1, "content": [CHART_CALL]}),
        ev(4, "turn.completed", iterations=1, usage=USAGE, pending_tool_calls=[PENDING]),
    ]
    frames = feed_all(agui_run(), events)
    assert types(frames) == [
        "STEP_STARTED",
        "CUSTOM:llm.completed",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "STEP_FINISHED",
        "RUN_FINISHED",
    ]
    start, args = dump(frames[2][0]), dump(frames[3][0])
    assert (start["toolCallId"], start["toolCallName"], start["parentMessageId"]) == ("call_chart", "show_chart", M1)
    assert json.loads(args["delta"]) == {"kind": "bar"}
    assert dump(frames[-1][0])["outcome"] == {"type": "success", "pendingToolCallIds": ["call_chart"]}


def test_agui_a_turn_without_pending_calls_finishes_with_no_outcome():
    frames = feed_all(agui_run(), [ev(1, "turn.completed", iterations=1, usage=USAGE)])
    assert "outcome" not in dump(frames[-1][0])


def test_agui_the_run_the_clients_result_starts_shows_the_answer_not_the_result_the_client_has():
    events = [
        ev(
            5,
            "message.tool_result",
            message={"id": TOOL_MESSAGE, "content": [{"type": "tool_result", "tool_call_id": "call_chart"}]},
        ),
        ev(6, "turn.started", input_message_ids=[TOOL_MESSAGE]),
        ev(7, "llm.started", iteration=1, model="fake"),
        assistant(8, M2, "The chart is on your screen."),
        ev(9, "turn.completed", iterations=1, usage=USAGE),
    ]
    frames = feed_all(agui_run(start=4), events)
    assert types(frames) == [
        "STEP_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "STEP_FINISHED",
        "RUN_FINISHED",
    ]


# --- text: live deltas and the stored message -------------------------------------------------------


def test_a_stream_that_joins_mid_answer_shows_the_answer_whole_once_stored():
    frames = feed_all(ui_run(), [ev(1, "llm.started", iteration=1), delta("8 = ", 4), assistant(2, M2, "7 + 8 = 15.")])
    chunks = [m for m, _ in frames]
    assert [c["type"] for c in chunks] == ["start-step", "text-start", "text-delta", "text-end"]
    assert chunks[2]["delta"] == "7 + 8 = 15."


def test_a_missed_delta_stops_the_live_text_and_the_rest_comes_from_the_store():
    events = [ev(1, "llm.started", iteration=1), delta("7 + ", 0), delta("= ", 6), assistant(2, M2, "7 + 8 = 15.")]
    chunks = [m for m, _ in feed_all(ui_run(), events)]
    assert "".join(c["delta"] for c in chunks if c["type"] == "text-delta") == "7 + 8 = 15."
    assert [c["delta"] for c in chunks if c["type"] == "text-delta"] == ["7 + ", "8 = 15."]


def test_a_retried_call_closes_the_abandoned_text_and_streams_the_new_attempt():
    events = [
        ev(1, "llm.started", iteration=1),
        delta("Hel", 0, M1),
        ev(2, "llm.retrying", attempt=1, delay_ms=10, error={"code": "llm_timeout"}),
        delta("Hello", 0, M2),
        assistant(3, M2, "Hello!"),
    ]
    chunks = [m for m, _ in feed_all(ui_run(), events)]
    assert [c["type"] for c in chunks] == [
        "start-step",
        "text-start",
        "text-delta",
        "text-end",
        "data-llm.retrying",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
    ]
    assert chunks[5]["id"] == M2


# --- exactly once: a response cut anywhere goes on from its cursor -----------------------------------


def _without_deltas(events):
    return [e for e in events if e["sequence"] is not None]


@pytest.mark.parametrize("make_view", [agui_run, ui_run])
def test_cut_at_any_cursor_the_resumed_response_sends_exactly_the_rest(make_view):
    events = _without_deltas(TOOL_TURN)
    full = feed_all(make_view(), events)
    for cut, (_, cursor) in enumerate(full):
        if cursor is None:
            continue
        view = make_view(cursor.start)
        view.resume(cursor, [e for e in events if e["sequence"] <= cursor.sequence])
        rest = feed_all(view, [e for e in events if e["sequence"] > cursor.sequence])
        while rest and rest[0][1] is None:  # AG-UI first opens again a tool call it goes on with
            rest = rest[1:]
        assert [dump(m) for m, _ in rest] == [dump(m) for m, _ in full[cut + 1 :]], (cut, str(cursor))


def test_agui_resumed_mid_tool_call_opens_it_again_then_goes_on():
    events = _without_deltas(TOOL_TURN)
    full = feed_all(agui_run(), events)
    cut = types(full).index("TOOL_CALL_START")
    cursor = full[cut][1]
    assert cursor.shown == 1  # one message of the assistant's event was shown
    view = agui_run()
    view.resume(cursor, [e for e in events if e["sequence"] <= cursor.sequence])
    assert types(view.opening(resumed=True)) == ["RUN_STARTED", "STEP_STARTED"]
    rest = feed_all(view, [e for e in events if e["sequence"] > cursor.sequence])
    assert types(rest)[:3] == ["TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END"] and rest[0][1] is None


@pytest.mark.parametrize(("make_view", "reopen"), [(agui_run, ["TEXT_MESSAGE_START"]), (ui_run, [])])
def test_resumed_mid_answer_the_text_goes_on_from_its_character(make_view, reopen):
    streamed = feed_all(make_view(), TOOL_TURN[:11])  # up to the first delta: "7 + " shown
    cursor = streamed[-1][1]
    assert (cursor.sequence, cursor.chars) == (10, 4)
    view = make_view()
    view.resume(cursor, _without_deltas(TOOL_TURN[:11]))
    rest = feed_all(view, _without_deltas(TOOL_TURN[11:]))  # the deltas after the drop never reach this response
    texts = [dump(m) for m, _ in rest]
    kinds = types(rest)
    text_types = {"TEXT_MESSAGE_CONTENT", "text-delta"}
    assert "".join(t["delta"] for t, k in zip(texts, kinds, strict=True) if k in text_types) == "8 = 15."
    starts = [k for k in kinds if k in ("TEXT_MESSAGE_START", "text-start")]
    assert starts == reopen


# --- the AI SDK ------------------------------------------------------------------------------------


def test_ui_stream_tool_turn_chunks():
    chunks = [m for m, _ in feed_all(ui_run(), TOOL_TURN)]
    assert [c["type"] for c in chunks] == [
        "start-step",
        "data-llm.completed",
        "tool-input-start",
        "tool-input-available",
        "tool-output-available",
        "finish-step",
        "start-step",
        "text-start",
        "text-delta",
        "text-delta",
        "data-llm.completed",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
    ]
    assert chunks[3] == {
        "type": "tool-input-available",
        "toolCallId": "call_1",
        "toolName": "add",
        "dynamic": True,
        "providerExecuted": True,
        "input": {"a": 7, "b": 8},
    }
    assert chunks[4]["output"] == 15 and chunks[1]["transient"] is True
    assert chunks[-1] == {
        "type": "finish",
        "finishReason": "stop",
        "messageMetadata": {"usage": {"input_tokens": 20, "output_tokens": 4}},
    }


def test_ui_stream_opens_with_the_turn_as_the_message():
    assert ui_run().opening(resumed=False) == [
        ({"type": "start", "messageMetadata": {"session_id": "s", "turn_id": "turn"}, "messageId": "turn"}, None)
    ]


def test_ui_stream_failed_and_cancelled_and_waiting_endings():
    failed = [m for m, _ in feed_all(ui_run(), [ev(1, "turn.failed", error={"code": "llm_error", "message": "boom"})])]
    assert failed == [{"type": "error", "errorText": "llm_error: boom"}, {"type": "finish", "finishReason": "error"}]
    cancelled = [m for m, _ in feed_all(ui_run(), [ev(1, "turn.cancelled", reason="user")])]
    assert cancelled == [{"type": "abort", "reason": "user"}]
    asked = [
        ev(1, "llm.started", iteration=1),
        assistant(2, M1, calls=["call_1"]),
        ev(3, "tool.approval_requested", tool_call_id="call_1", name="add", arguments={}),
        ev(4, "session.status", status="waiting", previous="running", error=None),
    ]
    chunks = [m for m, _ in feed_all(ui_run(), asked)]
    assert chunks[-3:] == [
        {"type": "tool-approval-request", "approvalId": "call_1", "toolCallId": "call_1"},
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "tool-calls"},
    ]


def test_ui_stream_a_denied_call_is_output_denied():
    events = [
        ev(1, "llm.started", iteration=1),
        assistant(2, M1, calls=["call_1"]),
        ev(3, "tool.approval_requested", tool_call_id="call_1", name="add", arguments={}),
        ev(4, "tool.approval_resolved", tool_call_id="call_1", approved=False, reason="no"),
        ev(
            5,
            "message.tool_result",
            message={
                "id": TOOL_MESSAGE,
                "content": [{"type": "tool_result", "tool_call_id": "call_1", "error": "denied: no"}],
            },
        ),
    ]
    assert [m for m, _ in feed_all(ui_run(), events)][-1] == {"type": "tool-output-denied", "toolCallId": "call_1"}


# --- requests read into ours --------------------------------------------------------------------------


def test_agui_input_becomes_our_messages_and_decisions():
    run_input = agui.parse_input(
        {
            "threadId": "t",
            "runId": "r",
            "messages": [
                {"id": "a", "role": "user", "content": "hi"},
                {
                    "id": "b",
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see"},
                        {"type": "image", "source": {"type": "url", "value": "https://x/y.png"}},
                    ],
                },
                {"id": "c", "role": "assistant", "content": "hello"},
            ],
            "resume": [{"interruptId": "call_1", "status": "resolved", "payload": {"approved": False, "reason": "no"}}],
        }
    )
    assert agui.incoming(run_input) == [
        {"id": "a", "role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "id": "b",
            "role": "user",
            "content": [{"type": "text", "text": "see"}, {"type": "image", "url": "https://x/y.png"}],
        },
        {"id": "c", "role": "assistant", "tool_call_ids": []},
    ]
    assert agui.approvals(run_input) == [{"tool_call_id": "call_1", "approved": False, "reason": "no"}]


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"threadId": "t"},
        {"threadId": "t", "runId": "r", "messages": [{"id": "a", "role": "robot", "content": "x"}]},
    ],
)
def test_agui_input_that_is_not_a_run_agent_input_is_a_validation_error(body):
    with pytest.raises(ValidationError):
        agui.parse_input(body)


def test_agui_resolved_approval_without_an_answer_is_a_validation_error():
    run_input = agui.parse_input(
        {"threadId": "t", "runId": "r", "messages": [], "resume": [{"interruptId": "x", "status": "resolved"}]}
    )
    with pytest.raises(ValidationError):
        agui.approvals(run_input)


def run_input_with(**fields) -> dict:
    return {"threadId": "t", "runId": "r", "messages": [], **fields}


def test_agui_tool_messages_are_a_front_end_tools_results():
    run_input = agui.parse_input(
        run_input_with(
            messages=[
                {
                    "id": "a",
                    "role": "assistant",
                    "toolCalls": [
                        {"id": "call_1", "type": "function", "function": {"name": "show_chart", "arguments": "{}"}}
                    ],
                },
                {"id": "t1", "role": "tool", "toolCallId": "call_1", "content": '{"shown":true}'},
                {
                    "id": "t2",
                    "role": "tool",
                    "toolCallId": "call_2",
                    "content": [{"type": "text", "text": "half "}, {"type": "text", "text": "done"}],
                    "error": "the user closed the chart",
                },
            ]
        )
    )
    assert agui.incoming(run_input) == [
        {"id": "a", "role": "assistant", "tool_call_ids": ["call_1"]},
        {"id": "t1", "role": "tool", "tool_call_id": "call_1", "content": '{"shown":true}', "error": None},
        {
            "id": "t2",
            "role": "tool",
            "tool_call_id": "call_2",
            "content": "half done",
            "error": "the user closed the chart",
        },
    ]


def test_agui_a_tool_message_with_an_image_is_a_validation_error():
    image = {"type": "image", "source": {"type": "url", "value": "https://x/y.png"}}
    run_input = agui.parse_input(
        run_input_with(messages=[{"id": "t", "role": "tool", "toolCallId": "c", "content": [image]}])
    )
    with pytest.raises(ValidationError):
        agui.incoming(run_input)


def test_agui_tools_become_the_turns_client_tools():
    schema = {"type": "object", "properties": {"kind": {"type": "string"}}}
    run_input = agui.parse_input(
        run_input_with(
            tools=[
                {"name": "show_chart", "description": "Show a chart.", "parameters": schema},
                {"name": "ping", "description": "No arguments."},
            ]
        )
    )
    assert agui.client_tools(run_input) == [
        {"name": "show_chart", "description": "Show a chart.", "parameters": schema},
        {"name": "ping", "description": "No arguments.", "parameters": {"type": "object", "properties": {}}},
    ]
    assert agui.client_tools(agui.parse_input(run_input_with())) == []


@pytest.mark.parametrize(
    ("tools", "field"),
    [
        ([{"name": "", "description": "d"}], "tools.0.name"),
        ([{"name": "   ", "description": "d"}], "tools.0.name"),
        ([{"name": "x" * 129, "description": "d"}], "tools.0.name"),
        ([{"name": "a", "description": "d"}, {"name": "a", "description": "e"}], "tools.1.name"),
        ([{"name": "a", "description": "d", "parameters": ["not", "a", "schema"]}], "tools.0.parameters"),
        ([{"name": "a", "description": "d", "parameters": "string"}], "tools.0.parameters"),
        ([{"name": f"t{i}", "description": "d"} for i in range(101)], "tools"),
    ],
)
def test_agui_tools_that_cannot_be_offered_are_a_validation_error(tools, field):
    with pytest.raises(ValidationError) as raised:
        agui.client_tools(agui.parse_input(run_input_with(tools=tools)))
    assert field in raised.value.details


def test_agui_a_name_of_128_characters_and_100_tools_are_allowed():
    tools = [{"name": f"{i:03d}" + "x" * 125, "description": "d"} for i in range(100)]
    assert len(agui.client_tools(agui.parse_input(run_input_with(tools=tools)))) == 100


def test_chat_request_becomes_our_messages_and_answered_approvals():
    body = {
        "id": "chat",
        "trigger": "submit-message",
        "messages": [
            {
                "id": "u",
                "role": "user",
                "parts": [
                    {"type": "text", "text": "hi"},
                    {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,aGk="},
                ],
            },
            {
                "id": "a",
                "role": "assistant",
                "parts": [
                    {
                        "type": "dynamic-tool",
                        "toolCallId": "call_1",
                        "state": "approval-responded",
                        "approval": {"id": "call_1", "approved": True},
                    }
                ],
            },
        ],
    }
    assert aisdk.parse_request(body) == {
        "messages": [
            {
                "id": "u",
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image", "base64": "aGk=", "media_type": "image/png"},
                ],
            },
            {"id": "a", "role": "assistant"},
        ],
        "approvals": [{"tool_call_id": "call_1", "approved": True, "reason": None}],
    }


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"messages": []},
        {
            "messages": [
                {"id": "u", "role": "user", "parts": [{"type": "file", "mediaType": "application/pdf", "url": "x"}]}
            ]
        },
        {"messages": [{"role": "user", "parts": []}]},
        {"messages": [{"id": "u", "role": "user", "parts": []}], "trigger": "other"},
    ],
)
def test_a_chat_request_that_is_not_one_is_a_validation_error(body):
    with pytest.raises(ValidationError):
        aisdk.parse_request(body)


def test_regenerating_is_a_conflict():
    with pytest.raises(Conflict):
        aisdk.parse_request({"messages": [{"id": "u", "role": "user", "parts": []}], "trigger": "regenerate-message"})


COMPACTED = {"summary": "s", "through_sequence": 2, "tokens_before": 900, "tokens_after": 100, "model": "llmsim-1"}
COMPACTING_TURN = [
    ev(1, "message.user", message={"id": "u"}),
    ev(2, "turn.started", input_message_ids=["u"]),
    ev(3, "context.compacted", **COMPACTED, usage={"input_tokens": 30, "output_tokens": 5}),
    ev(4, "llm.started", iteration=1, model="llmsim-1"),
    ev(5, "llm.completed", iteration=1, model="llmsim-1", usage=USAGE),
    assistant(6, M2, "hello"),
    ev(7, "turn.completed", iterations=1, usage={"input_tokens": 40, "output_tokens": 7}),
]


def test_a_compaction_is_a_step_of_its_own_in_ag_ui_and_counts_in_the_runs_usage():
    frames = feed_all(agui_run(), COMPACTING_TURN)
    shown = types(frames)
    at = shown.index("CUSTOM:context.compacted")
    assert shown[at - 1 : at + 3] == ["STEP_STARTED", "CUSTOM:context.compacted", "STEP_FINISHED", "STEP_STARTED"]
    assert frames[at - 1][0].step_name == frames[at + 1][0].step_name == "context_compaction"
    assert frames[at][0].value["summary"] == "s"
    finished = frames[-1][0]
    assert finished.type.value == "RUN_FINISHED"


def test_a_compaction_is_a_step_of_its_own_in_the_ai_sdk_stream():
    frames = feed_all(ui_run(), COMPACTING_TURN)
    shown = types(frames)
    at = shown.index("data-context.compacted")
    assert shown[at - 1 : at + 3] == ["start-step", "data-context.compacted", "finish-step", "start-step"]
    assert frames[-1][0]["type"] == "finish" and frames[-1][0]["messageMetadata"]["usage"] == {
        "input_tokens": 40,
        "output_tokens": 7,
    }


def test_both_protocols_refuse_more_messages_than_a_request_may_carry(settings):
    settings.CHAT_MAX_MESSAGES = 3
    ui = [{"id": f"u{i}", "role": "user", "parts": [{"type": "text", "text": "hi"}]} for i in range(4)]
    agui_messages = [{"id": f"u{i}", "role": "user", "content": "hi"} for i in range(4)]
    for parse, body in [
        (aisdk.parse_request, {"messages": ui}),
        (agui.parse_input, {"threadId": "t", "runId": "r", "messages": agui_messages}),
    ]:
        with pytest.raises(PayloadTooLarge) as refused:
            parse(body)
        assert refused.value.details == {"messages": ["At most 3 messages in one request; this one has 4."]}
        assert parse({**body, "messages": body["messages"][:3]})
