"""The chat front-ends' protocols through their own client libraries, against real uvicorn and Celery processes:
AG-UI's `HttpAgent` (@ag-ui/client) and the AI SDK's chat transport with `readUIMessageStream` (`ai`), run by
Node scripts in tests/frontends (installed from its package-lock.json by `make frontends`). Each test checks
what the client ends up showing against what the session stored: nothing lost, nothing twice."""

import json
import shutil
import subprocess
import time

import pytest
import requests

from everruns.api.keys import api_key_create
from sessions.models import Message
from tests import processes
from tests.e2e.client import open_session, say
from tests.factories import make_model, make_session
from tests.processes import ROOT

pytestmark = [pytest.mark.e2e]
FRONTENDS = ROOT / "tests" / "frontends"


def node(script: str, plan: dict) -> dict:
    if shutil.which("node") is None or not (FRONTENDS / "node_modules").is_dir():
        pytest.fail("the front-end client libraries are not installed: run `make frontends`")
    done = subprocess.run(
        ["node", str(FRONTENDS / script), json.dumps(plan)], capture_output=True, text=True, timeout=90, cwd=FRONTENDS
    )
    assert done.returncode == 0 and done.stdout, done.stderr
    return json.loads(done.stdout)


def stored(session_url: str) -> list[dict]:
    return requests.get(f"{session_url}/messages", timeout=5).json()["items"]


def slow_agent(base: str, **agent) -> str:
    slow = make_model(model_id="llmsim-slow", settings={"latency_ms": 300, "tokens_per_second": 20})
    return agent_of(base, default_model_id=str(slow.pk), **agent)


def agent_of(base: str, **agent) -> str:
    created = requests.post(f"{base}/v1/agents", json={"name": "front-end", "system_prompt": "Be brief.", **agent})
    created.raise_for_status()
    return created.json()["id"]


def thread_url(base: str, agent_id: str, result: dict) -> str:
    session_id = result["runs"][0]["sessionId"]
    return f"{base}/v1/agents/{agent_id}/sessions/{session_id}"


def agui(base: str, agent_id: str, *steps: dict, thread: str = "thread-1") -> dict:
    plan = {"url": f"{base}/v1/agents/{agent_id}/ag-ui", "threadId": thread, "steps": list(steps)}
    return node("agui.mjs", {**plan, "cancelBase": f"{base}/v1/agents/{agent_id}"})


def text_of(message: dict) -> str:
    return "".join(p["text"] for p in message["content"] if p["type"] == "text")


def assert_agui_shows_the_session(result: dict, messages: list[dict], client_results: tuple = ()) -> None:
    """The client's conversation is the stored one, message by message (user messages by their content, the
    results of the front-end tool calls `client_results` by their call: the client made those messages)."""
    client = result["messages"]
    assert len(client) == len(messages), (client, messages)
    for shown, kept in zip(client, messages, strict=True):
        if kept["role"] == "user":
            assert shown["role"] == "user" and shown["content"] == text_of(kept)
            continue
        if kept["role"] == "tool_result":
            part = kept["content"][0]
            assert shown["role"] == "tool" and shown["toolCallId"] == part["tool_call_id"]
            if part["tool_call_id"] in client_results:
                assert shown["content"] == part["result"]  # the client's text, as it sent it
            else:
                assert shown["id"] == kept["id"] and json.loads(shown["content"]) == part["result"]
            continue
        assert shown["id"] == kept["id"]
        assert shown["role"] == "assistant" and (shown.get("content") or "") == text_of(kept)
        calls = [p for p in kept["content"] if p["type"] == "tool_call"]
        assert [
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in shown.get("toolCalls") or []
        ] == [(c["id"], c["name"], c["arguments"]) for c in calls]


# --- AG-UI ------------------------------------------------------------------------------------------


def test_agui_plain_turn(stack):
    agent_id = agent_of(stack)
    result = agui(stack, agent_id, {"say": "Hello there"})
    run = result["runs"][0]
    assert run["error"] is None and run["outcome"] == "success"
    assert run["events"][0] == "RUN_STARTED" and run["events"][-1] == "RUN_FINISHED"
    assert run["events"].count("TEXT_MESSAGE_START") == 1 and run["events"].count("TEXT_MESSAGE_END") == 1
    messages = stored(thread_url(stack, agent_id, result))
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert_agui_shows_the_session(result, messages)


def test_agui_tool_turn(stack):
    agent_id = agent_of(stack, capabilities=["test_math"])
    result = agui(stack, agent_id, {"say": "What is 7 + 8?"})
    events = result["runs"][0]["events"]
    assert events.count("STEP_STARTED") == events.count("STEP_FINISHED") == 2
    assert ["TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END"] == [e for e in events if e.startswith("TOOL_CALL_")][
        :3
    ]
    assert "TOOL_CALL_RESULT" in events and "CUSTOM:llm.completed" in events
    messages = stored(thread_url(stack, agent_id, result))
    assert [m["role"] for m in messages] == ["user", "assistant", "tool_result", "assistant"]
    assert_agui_shows_the_session(result, messages)
    assert result["messages"][-1]["content"] == "7 + 8 = 15."


def test_agui_failing_model(stack):
    broken = make_model(model_id="error")
    agent_id = agent_of(stack, default_model_id=str(broken.pk))
    run = agui(stack, agent_id, {"say": "hi"})["runs"][0]
    assert run["runError"]["code"] == "llm_provider_error" and run["events"][-1] == "RUN_ERROR"
    assert run["outcome"] is None


def test_agui_cancelled_turn(stack):
    agent_id = slow_agent(stack)
    result = agui(stack, agent_id, {"say": "Tell me a long story", "cancelAfter": "TEXT_MESSAGE_CONTENT"})
    run = result["runs"][0]
    assert run["cancelStatus"] == 202 and run["outcome"] == "cancelled" and run["events"][-1] == "RUN_FINISHED"
    messages = stored(thread_url(stack, agent_id, result))
    assert [m["role"] for m in messages] == ["user", "assistant"] and messages[1]["metadata"]["cancelled"] is True
    assert result["messages"][1]["content"] == text_of(messages[1])  # the client shows the text the session kept


def test_agui_dropped_and_resumed_stream(stack):
    agent_id = slow_agent(stack, capabilities=["test_math"])
    result = agui(
        stack, agent_id, {"say": "What is 7 + 8?", "dropAfter": 4}, {"say": "Tell me a story", "dropAfter": 5}
    )
    first, resumed, second, resumed_second = result["runs"]
    assert first["error"] is None and first["outcome"] is None and resumed["resumedFrom"] == first["cursor"]
    assert resumed["events"][-1] == "RUN_FINISHED" and resumed_second["events"][-1] == "RUN_FINISHED"
    # Nothing shown twice: arguments and results once over both responses (a response that goes on with a
    # tool call or a message the client has opens it again, which the client applies as a no-op).
    for a, b in ((first, resumed), (second, resumed_second)):
        both = a["events"] + b["events"]
        assert both.count("TOOL_CALL_ARGS") <= 1 and both.count("TOOL_CALL_RESULT") <= 1
    messages = stored(thread_url(stack, agent_id, result))
    assert [m["role"] for m in messages] == ["user", "assistant", "tool_result", "assistant", "user", "assistant"]
    assert_agui_shows_the_session(result, messages)


def test_agui_second_run_sends_the_whole_history_and_nothing_is_stored_twice(stack):
    agent_id = agent_of(stack, capabilities=["test_math"])
    result = agui(stack, agent_id, {"say": "What is 7 + 8?"}, {"say": "What is 2 + 3?"}, thread="history")
    messages = stored(thread_url(stack, agent_id, result))
    roles = ["user", "assistant", "tool_result", "assistant"]
    assert [m["role"] for m in messages] == roles * 2
    assert_agui_shows_the_session(result, messages)
    # The same thread again, with the same history: nothing new is stored, the run is empty.
    again = agui(stack, agent_id, {}, thread="history")
    assert again["runs"][0]["events"] == ["RUN_STARTED", "RUN_FINISHED"]
    assert len(stored(thread_url(stack, agent_id, result))) == len(messages)


def test_agui_tool_approval_is_an_interrupt_and_resume_answers_it(stack):
    agent_id = agent_of(stack, capabilities=["test_math"], tool_policy={"add": "ask"})
    result = agui(stack, agent_id, {"say": "What is 7 + 8?"}, {"approve": True})
    asked, answered = result["runs"]
    assert asked["outcome"] == "interrupt" and "CUSTOM:tool.approval_requested" in asked["events"]
    (interrupt,) = asked["interrupts"]
    assert interrupt["reason"] == "tool_approval" and interrupt["toolCallId"] == interrupt["id"]
    assert answered["outcome"] == "success" and "TOOL_CALL_RESULT" in answered["events"]
    messages = stored(thread_url(stack, agent_id, result))
    assert [m["role"] for m in messages] == ["user", "assistant", "tool_result", "assistant"]
    assert_agui_shows_the_session(result, messages)


def fake_agent(base: str, fake_llm) -> str:
    """An agent on a model of the fake OpenAI-compatible server (added through the API): the script says what
    the model answers, so it can call the client's tools."""
    provider = requests.post(
        f"{base}/v1/llm-providers",
        json={"name": "fake", "provider_type": "openai_compatible", "base_url": fake_llm.base_url, "api_key": "sk-x"},
    ).json()
    model = requests.post(f"{base}/v1/llm-providers/{provider['id']}/models", json={"model_id": "fake-model"}).json()
    return agent_of(base, default_model_id=model["id"])


def test_agui_front_end_tool_runs_in_the_client_and_its_result_goes_on_in_the_next_run(stack, fake_llm):
    fake_llm.reply(
        {"tool_calls": [{"id": "call_chart", "name": "show_chart", "arguments": {"kind": "bar"}}]},
        {"text": "The bar chart is on your screen."},
        {"text": "You're welcome."},
    )
    agent_id = fake_agent(stack, fake_llm)
    result = agui(
        stack,
        agent_id,
        {"say": "Show me a bar chart", "frontendTools": True},
        {"say": "Thanks", "frontendTools": True},
        thread="charts",
    )
    called, answered, thanked = result["runs"]
    # The model's call of the client's tool ends the run; the client runs it and answers in the next run.
    assert called["outcome"] == "success" and called["pendingToolCallIds"] == ["call_chart"]
    assert [e for e in called["events"] if e.startswith("TOOL_CALL_")] == [
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
    ]
    assert answered["answered"] == ["call_chart"] and answered["outcome"] == "success"
    assert not answered["pendingToolCallIds"] and "TOOL_CALL_RESULT" not in answered["events"]
    assert "TEXT_MESSAGE_CONTENT" in answered["events"] and thanked["events"][-1] == "RUN_FINISHED"
    # The model was offered the tool, and got the client's result.
    offered = fake_llm.requests[0]["tools"]
    assert [t["function"]["name"] for t in offered] == ["show_chart"]
    assert offered[0]["function"]["parameters"]["properties"]["kind"]["enum"] == ["bar", "pie"]
    (tool_message,) = [m for m in fake_llm.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_message["tool_call_id"] == "call_chart" and json.loads(tool_message["content"]) == {
        "shown": True,
        "kind": "bar",
    }
    # Nothing stored twice, though every run sent the whole history (the client's tool message too).
    messages = stored(thread_url(stack, agent_id, result))
    assert [m["role"] for m in messages] == ["user", "assistant", "tool_result", "assistant", "user", "assistant"]
    assert_agui_shows_the_session(result, messages, client_results=("call_chart",))
    assert result["messages"][3]["content"] == "The bar chart is on your screen."
    assert result["messages"][-1]["content"] == "You're welcome."


def test_agui_front_end_tools_that_cannot_be_offered_are_a_400_and_nothing_is_stored(stack):
    agent_id = agent_of(stack)
    run_input = {
        "threadId": "bad-tools",
        "runId": "r",
        "messages": [{"id": "u1", "role": "user", "content": "hi"}],
        "tools": [{"name": "show_chart", "description": "d", "parameters": "not a schema"}],
    }
    refused = requests.post(f"{stack}/v1/agents/{agent_id}/ag-ui", json=run_input, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {"tools.0.parameters": ["A JSON Schema object."]}
    sessions = requests.get(f"{stack}/v1/agents/{agent_id}/sessions", timeout=5).json()["items"]
    assert all(not stored(f"{stack}/v1/agents/{agent_id}/sessions/{s['id']}") for s in sessions)


# --- the AI SDK's UI message stream ----------------------------------------------------------------------


def chat(session_url: str, *steps: dict) -> dict:
    session_id = session_url.rsplit("/", 1)[1]
    plan = {"api": f"{session_url}/chat", "chatId": session_id, "cancelUrl": f"{session_url}/cancel"}
    return node("aisdk.mjs", {**plan, "steps": list(steps)})


def turn_text(messages: list[dict], turn: int) -> str:
    """The assistant's text of the `turn`-th turn (0-based) as stored (every assistant message after its user one)."""
    turns, current = [], None
    for m in messages:
        if m["role"] == "user":
            current = []
            turns.append(current)
        elif m["role"] == "assistant":
            current.append(text_of(m))
    return "".join(turns[turn])


def ui_text(message: dict) -> str:
    return "".join(p["text"] for p in message["parts"] if p["type"] == "text")


def test_ai_sdk_plain_turn(stack):
    session_url = open_session(stack)
    result = chat(session_url, {"say": "Hello there"})
    (run,) = result["runs"]
    assert run["chunks"][0] == "start" and run["chunks"][-1] == "finish" and not run["errors"]
    user, answer = result["messages"]
    messages = stored(session_url)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert ui_text(answer) == text_of(messages[1]) and answer["metadata"]["usage"]["output_tokens"] > 0
    assert [p["type"] for p in answer["parts"]] == ["step-start", "text"]


def test_ai_sdk_tool_turn(stack):
    session_url = open_session(stack, agent={"capabilities": ["test_math"]})
    result = chat(session_url, {"say": "What is 7 + 8?"})
    answer = result["messages"][1]
    tool = next(p for p in answer["parts"] if p["type"] == "dynamic-tool")
    assert tool["toolName"] == "add" and tool["state"] == "output-available"
    assert tool["input"] == {"a": 7, "b": 8} and tool["output"] == {"result": 15}
    assert ui_text(answer) == "7 + 8 = 15." == turn_text(stored(session_url), 0)
    assert [p["type"] for p in answer["parts"]].count("step-start") == 2


def test_ai_sdk_failing_model(stack):
    broken = make_model(model_id="error")
    session_url = open_session(stack, session={"model_id": str(broken.pk)})
    (run,) = chat(session_url, {"say": "hi"})["runs"]
    assert run["chunks"][-2:] == ["error", "finish"]
    assert run["errors"] and run["errors"][0].startswith("llm_provider_error:")


def test_ai_sdk_cancelled_turn(stack):
    slow = make_model(model_id="llmsim-slow", settings={"latency_ms": 300, "tokens_per_second": 20})
    session_url = open_session(stack, session={"model_id": str(slow.pk)})
    result = chat(session_url, {"say": "Tell me a long story", "cancelAfter": "text-delta"})
    (run,) = result["runs"]
    assert run["cancelStatus"] == 202 and run["chunks"][-1] == "abort"
    messages = stored(session_url)
    assert messages[-1]["metadata"]["cancelled"] is True
    assert ui_text(result["messages"][1]) == text_of(messages[-1])


def test_ai_sdk_dropped_and_resumed_stream(stack):
    slow = make_model(model_id="llmsim-slow", settings={"latency_ms": 300, "tokens_per_second": 20})
    session_url = open_session(stack, agent={"capabilities": ["test_math"]}, session={"model_id": str(slow.pk)})
    result = chat(session_url, {"say": "What is 7 + 8?", "dropAfter": 4}, {"say": "Tell me a story", "dropAfter": 5})
    dropped, resumed = result["runs"][0], result["runs"][1]
    assert dropped["dropped"] and resumed["resumed"] and resumed["chunks"][0] == "start"
    assert resumed["chunks"][-1] == "finish"
    messages = stored(session_url)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool_result", "assistant", "user", "assistant"]
    user, first, _, second = result["messages"]
    assert ui_text(first) == turn_text(messages, 0) and ui_text(second) == turn_text(messages, 1)
    assert len([p for p in first["parts"] if p["type"] == "dynamic-tool"]) == 1


def test_ai_sdk_second_run_sends_the_whole_history_and_nothing_is_stored_twice(stack):
    session_url = open_session(stack, agent={"capabilities": ["test_math"]})
    result = chat(session_url, {"say": "What is 7 + 8?"}, {"say": "What is 2 + 3?"})
    messages = stored(session_url)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool_result", "assistant"] * 2
    assert [ui_text(m) for m in result["messages"] if m["role"] == "assistant"] == [
        turn_text(messages, 0),
        turn_text(messages, 1),
    ]


# --- the cursor, on the wire -------------------------------------------------------------------------


def frames(response, limit: int | None = None) -> list[tuple[str | None, str]]:
    """(id, data) of each SSE message, read per the SSE rules, until the stream ends or `limit` messages."""
    out, current = [], {}
    for raw in response.iter_lines(decode_unicode=True):
        if raw == "":
            if "data" in current:
                out.append((current.get("id"), current["data"]))
                if limit and len(out) >= limit:
                    return out
            current = {}
        elif raw.startswith("id: "):
            current["id"] = raw[4:]
        elif raw.startswith("data: "):
            current["data"] = raw[6:]
    return out


def test_ui_stream_resumed_from_its_cursor_sends_exactly_what_was_missed(stack):
    slow = make_model(model_id="llmsim-slow", settings={"latency_ms": 300, "tokens_per_second": 20})
    session_url = open_session(stack, agent={"capabilities": ["test_math"]}, session={"model_id": str(slow.pk)})
    body = {
        "id": "c",
        "trigger": "submit-message",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "What is 7 + 8?"}]}],
    }
    with requests.post(f"{session_url}/chat", json=body, stream=True, timeout=(5, 30)) as first:
        assert first.headers["x-vercel-ai-ui-message-stream"] == "v1"
        head = frames(first, limit=7)
    cursor = [i for i, _ in head if i][-1]
    shown = head[: max(k for k, (i, _) in enumerate(head) if i == cursor) + 1]
    time.sleep(1.5)  # the turn goes on while nobody listens
    with requests.get(
        f"{session_url}/chat/stream", headers={"Last-Event-ID": cursor}, stream=True, timeout=(5, 30)
    ) as rest:
        tail = frames(rest)
    chunks = [json.loads(d) for _, d in shown] + [json.loads(d) for _, d in tail if d != "[DONE]"][
        1:
    ]  # one `start` each
    assert tail[-1][1] == "[DONE]" and chunks[-1]["type"] == "finish"
    types = [c["type"] for c in chunks]
    assert types.count("tool-input-start") == types.count("tool-output-available") == 1
    assert types.count("start-step") == 2 and types.count("text-start") == types.count("text-end") == 1
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert text == "7 + 8 = 15." == turn_text(stored(session_url), 0)
    # Nothing to resume once the turn is over: the AI SDK's "no active stream".
    assert requests.get(f"{session_url}/chat/stream", timeout=5).status_code == 204


# --- access ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(django_db_setup, log_dir):
    """A web process that needs keys (the session's worker runs its turns)."""
    proc, url = processes.start_web(log_dir, **processes.WEB_ENV, AUTH_MODE="api_key")
    yield url
    proc.stop()


def test_the_front_end_routes_need_a_key_and_a_stream_token_only_resumes(seeded_tx, worker, keyed):
    _, secret = api_key_create(name="front-end")
    key = {"Authorization": f"Bearer {secret}"}
    session, other = make_session(), make_session()
    base = f"{keyed}/v1/agents/{session.agent_id}"
    chat_body = {"messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}
    run_input = {"threadId": str(session.pk), "runId": "r", "messages": [{"id": "u1", "role": "user", "content": "hi"}]}
    assert requests.post(f"{base}/ag-ui", json=run_input, timeout=5).status_code == 401
    assert requests.post(f"{base}/sessions/{session.pk}/chat", json=chat_body, timeout=5).status_code == 401
    with requests.post(f"{base}/ag-ui", json=run_input, headers=key, stream=True, timeout=(5, 30)) as ok:
        assert ok.status_code == 200 and ok.headers["x-everruns-session-id"] == str(session.pk)
        assert json.loads(frames(ok)[-1][1])["type"] == "RUN_FINISHED"
    token = requests.post(f"{base}/sessions/{session.pk}/stream-token", json={}, headers=key, timeout=5).json()["token"]
    body = {
        "messages": [*chat_body["messages"], {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "more"}]}]
    }
    # A stream token reads (the resume); writes need the key (docs/security.md).
    assert requests.post(f"{base}/sessions/{session.pk}/chat?token={token}", json=body, timeout=5).status_code == 401
    assert requests.post(f"{base}/ag-ui?token={token}", json=run_input, timeout=5).status_code == 401
    assert requests.get(f"{base}/sessions/{session.pk}/chat/stream?token={token}", timeout=5).status_code == 204
    elsewhere = f"{keyed}/v1/agents/{other.agent_id}/sessions/{other.pk}/chat/stream?token={token}"
    assert requests.get(elsewhere, timeout=5).status_code == 401
    with requests.post(
        f"{base}/sessions/{session.pk}/chat", json=body, headers=key, stream=True, timeout=(5, 30)
    ) as by_key:
        assert by_key.status_code == 200 and frames(by_key)[-1][1] == "[DONE]"
    roles = [m.role for m in Message.objects.filter(session=session).order_by("sequence")]
    assert roles == ["user", "assistant", "user", "assistant"]


# --- the reference notebook's conversation, in each client --------------------------------------------
NOTEBOOK = ["What is 2 + 2? Please explain your reasoning.", "What about 3 + 3?", "Tell me a short joke."]
NOTEBOOK_AGENT = {
    "name": "Python Example Agent",
    "system_prompt": "You are a helpful assistant. Be concise and friendly.",
}


def notebook_answers_over_rest(base: str) -> list[str]:
    """The notebook's conversation through the REST API, as the reference client has it: each answer."""
    session_url = open_session(base, agent=NOTEBOOK_AGENT)
    answers = []
    for text in NOTEBOOK:
        say(session_url, text).raise_for_status()
        deadline = time.monotonic() + 30
        while requests.get(session_url, timeout=5).json()["status"] != "pending":
            assert time.monotonic() < deadline, "the turn did not end"
            time.sleep(0.1)
        answers.append(text_of(stored(session_url)[-1]))
    return answers


def test_both_clients_show_the_reference_notebooks_conversation_turn_by_turn(stack):
    expected = notebook_answers_over_rest(stack)
    assert "2 + 2 = 4" in expected[0] and "3 + 3 = 6" in expected[1]
    # AG-UI: one thread, one run per message, the client's whole conversation checked against the log.
    agent_id = agent_of(stack, **NOTEBOOK_AGENT)
    result = agui(stack, agent_id, *({"say": text} for text in NOTEBOOK), thread="notebook")
    messages = stored(thread_url(stack, agent_id, result))
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert_agui_shows_the_session(result, messages)
    assert [text_of(m) for m in messages if m["role"] == "assistant"] == expected
    # The AI SDK: one chat, one request per message; the client shows each turn's answer as stored.
    session_url = open_session(stack, agent=NOTEBOOK_AGENT)
    shown = chat(session_url, *({"say": text} for text in NOTEBOOK))
    assert [ui_text(m) for m in shown["messages"] if m["role"] == "user"] == NOTEBOOK
    assert [ui_text(m) for m in shown["messages"] if m["role"] == "assistant"] == expected
