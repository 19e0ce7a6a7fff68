"""MCP tools through whole turns on the production shape (uvicorn + a Celery worker), against real MCP servers
(tests/mcp_server.py: the SDK's FastMCP in a process of its own), driven by llmsim's `call <tool> <JSON>`."""

import json
import time

import pytest
import requests

from tests import processes
from tests.conftest import wait_for
from tests.e2e.client import open_session, say

pytestmark = pytest.mark.e2e


@pytest.fixture
def mcp_http(log_dir):
    server = processes.McpTestServer(log_dir)
    yield server
    server.kill()


@pytest.fixture
def mcp_sse(log_dir):
    server = processes.McpTestServer(log_dir, transport="sse")
    yield server
    server.kill()


def mcp_session(base: str, server: processes.McpTestServer, **fields) -> str:
    """An MCP server named `t` (auto policy unless `fields` say otherwise) and a session of an agent that has it."""
    body = {"name": "t", "url": server.url, "transport": server.transport_field, "default_policy": "auto", **fields}
    created = requests.post(f"{base}/v1/mcp-servers", json=body)
    assert created.status_code == 201 and created.json()["last_error"] is None, created.text
    return open_session(base, agent={"capabilities": ["mcp:t"]})


def call(session_url: str, tool: str, arguments: dict) -> None:
    response = say(session_url, f"call mcp__t__{tool} {json.dumps(arguments)}")
    assert response.status_code == 201, response.text


def events(session_url: str, type_: str | None = None) -> list[dict]:
    items = requests.get(f"{session_url}/events", params={"limit": 500}).json()["items"]
    return [e for e in items if type_ is None or e["type"] == type_]


def settled(session_url: str, timeout: float = 40) -> dict:
    """The session once its turn has ended (pending or failed)."""
    return wait_for(
        lambda: (s := requests.get(session_url).json())["status"] in ("pending", "failed") and s,
        timeout,
        interval=0.2,
        message="the turn to end",
    )


def answer(session_url: str) -> str:
    messages = requests.get(f"{session_url}/messages").json()["items"]
    last = [m for m in messages if m["role"] == "assistant"][-1]
    return "".join(p.get("text", "") for p in last["content"] if p["type"] == "text")


def completed(session_url: str) -> dict:
    (event,) = events(session_url, "tool.completed")
    return event["data"]


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
def test_a_turn_calls_an_mcp_tool_with_the_servers_headers(stack, log_dir, transport):
    server = processes.McpTestServer(log_dir, transport=transport)
    try:
        session_url = mcp_session(stack, server, headers={"X-Api-Token": "mcp-secret-1"})
        call(session_url, "echo", {"text": "hello there"})
        assert settled(session_url)["status"] == "pending"
        (seen,) = server.seen("call", "echo")
    finally:
        server.kill()
    assert seen["arguments"] == {"text": "hello there"}
    assert seen["headers"]["x-api-token"] == "mcp-secret-1"
    done = completed(session_url)
    assert done["status"] == "success" and done["name"] == "mcp__t__echo"
    assert "echo: hello there" in json.dumps(done["result"])
    # The call id went to the server with the call (in `_meta`: the SDK numbers its requests itself).
    assert seen["meta"]["everruns/tool_call_id"] == done["tool_call_id"]
    assert "echo: hello there" in answer(session_url)
    assert [e["type"] for e in events(session_url)][-2:] == ["turn.completed", "session.status"]


def test_a_tool_that_raises_is_a_tool_error_and_the_turn_goes_on(stack, mcp_http):
    session_url = mcp_session(stack, mcp_http)
    call(session_url, "explode", {})
    assert settled(session_url)["status"] == "pending"
    done = completed(session_url)
    assert done["status"] == "error" and "exploded on purpose" in done["error"]
    assert "failed" in answer(session_url) and events(session_url, "turn.completed")


def test_a_slow_tool_past_the_servers_time_out_is_a_tool_error_and_the_server_is_told(stack, mcp_http):
    session_url = mcp_session(stack, mcp_http, timeout_seconds=1.5)
    call(session_url, "slow", {"seconds": 20})
    assert settled(session_url, timeout=20)["status"] == "pending"
    done = completed(session_url)
    assert done["status"] == "error" and "timed out" in done["error"] and done["duration_ms"] < 10_000
    wait_for(lambda: mcp_http.seen("cancelled", "slow"), 10, message="the server's cancellation")
    assert not mcp_http.seen("finished", "slow")


def test_an_mcp_tool_asks_for_approval_by_default(stack, mcp_http):
    session_url = mcp_session(stack, mcp_http, default_policy="ask")
    call(session_url, "echo", {"text": "may I"})
    wait_for(lambda: requests.get(session_url).json()["status"] == "waiting", 30, message="waiting")
    (asked,) = events(session_url, "tool.approval_requested")
    assert asked["data"]["name"] == "mcp__t__echo" and not mcp_http.seen("call")
    tool_call_id = asked["data"]["tool_call_id"]
    approval = requests.post(f"{session_url}/tool-calls/{tool_call_id}/approval", json={"approved": True})
    assert approval.status_code == 202, approval.text
    assert settled(session_url)["status"] == "pending"
    assert len(mcp_http.seen("call", "echo")) == 1 and completed(session_url)["status"] == "success"


def test_the_agents_tool_policy_overrides_the_servers_default(stack, mcp_http):
    session_url = mcp_session(stack, mcp_http, default_policy="ask")
    agent_url = session_url.split("/sessions/")[0]
    assert requests.patch(agent_url, json={"tool_policy": {"mcp__t__echo": "auto"}}).status_code == 200
    call(session_url, "echo", {"text": "no need to ask"})
    assert settled(session_url)["status"] == "pending" and not events(session_url, "tool.approval_requested")


def test_cancel_during_a_call_stops_it_at_once_and_the_server_sees_the_cancellation(stack, mcp_http):
    session_url = mcp_session(stack, mcp_http)
    call(session_url, "slow", {"seconds": 30})
    wait_for(lambda: mcp_http.seen("call", "slow"), 30, message="the call to reach the server")
    started = time.monotonic()
    assert requests.post(f"{session_url}/cancel", json={"reason": "enough"}).status_code == 202
    assert settled(session_url, timeout=15)["status"] == "pending"
    assert time.monotonic() - started < 10
    assert events(session_url, "turn.cancelled")[0]["data"]["reason"] == "enough"
    wait_for(lambda: mcp_http.seen("cancelled", "slow"), 10, message="the server's cancellation")
    assert not mcp_http.seen("finished", "slow")


def test_a_server_stopped_mid_call_is_a_tool_error_and_the_turn_goes_on(stack, mcp_http):
    session_url = mcp_session(stack, mcp_http)
    call(session_url, "slow", {"seconds": 25})
    wait_for(lambda: mcp_http.seen("call", "slow"), 30, message="the call to reach the server")
    mcp_http.kill()
    assert settled(session_url, timeout=20)["status"] == "pending"
    done = completed(session_url)
    assert done["status"] == "error" and "unavailable" in done["error"] and done["duration_ms"] < 20_000
    assert events(session_url, "turn.completed") and "failed" in answer(session_url)


def test_an_image_result_is_stored_as_an_image_part(stack, mcp_http):
    session_url = mcp_session(stack, mcp_http)
    call(session_url, "picture", {})
    assert settled(session_url)["status"] == "pending"
    (part,) = completed(session_url)["result"]["content"]
    assert part["type"] == "image" and part["media_type"] == "image/png" and part["base64"]


def test_a_worker_reuses_one_session_per_server_and_a_restarted_server_gets_a_new_one(stack, log_dir):
    server = processes.McpTestServer(log_dir)
    restarted = None
    try:
        session_url = mcp_session(stack, server)
        for text in ("one", "two"):
            call(session_url, "echo", {"text": text})
            assert settled(session_url)["status"] == "pending"
        first, second = server.seen("call", "echo")
        assert first["headers"]["mcp-session-id"] == second["headers"]["mcp-session-id"]
        server.kill()
        restarted = processes.McpTestServer(log_dir, port=server.port)
        call(session_url, "echo", {"text": "three"})
        assert settled(session_url)["status"] == "pending"
        (third,) = restarted.seen("call", "echo")
    finally:
        server.kill()
        if restarted:
            restarted.kill()
    assert third["arguments"] == {"text": "three"}
    assert third["headers"]["mcp-session-id"] != first["headers"]["mcp-session-id"]
    results = [e["data"] for e in events(session_url, "tool.completed")]
    assert [r["status"] for r in results] == ["success"] * 3
