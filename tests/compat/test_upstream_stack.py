"""Upstream Everruns clients against the production shape, live (uvicorn + a Celery worker): the stream under
its upstream name, and upstream's full agent/session workflow (integration_test.rs), request for request."""

import json

import pytest
import requests

from tests.e2e.client import open_session, say
from tests.e2e.sse import turn_done

pytestmark = [pytest.mark.e2e]


def sse_events(url: str, headers: dict, until) -> list[dict]:
    """The stored events of `url`'s stream (raw SSE lines, no client library: what any client sees) until
    `until(event)`; bounded in time."""
    events, current = [], {}
    with requests.get(url, stream=True, headers=headers, timeout=(5, 15)) as response:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        for raw in response.iter_lines(decode_unicode=True):
            if raw.startswith("event: "):
                current["event"] = raw[7:]
            elif raw.startswith("id: "):
                current["id"] = raw[4:]
            elif raw.startswith("data: "):
                current["data"] = json.loads(raw[6:])
            elif raw == "" and current:
                item, current = current, {}
                if item.get("data", {}).get("sequence") is not None:
                    events.append(item)
                    if until(item):
                        return events
    raise AssertionError(f"stream ended; saw {[e.get('event') for e in events]}")


def test_sse_is_the_same_stream_as_events_with_the_same_cursor(stack):
    session_url = open_session(stack, agent={"capabilities": ["test_math"]})
    assert say(session_url, "What is 2 + 2?").status_code == 201
    # No Accept header at all (upstream's EventSource-style clients): /sse is the stream anyway.
    via_sse = sse_events(f"{session_url}/sse", {}, turn_done)
    via_events = sse_events(f"{session_url}/events", {"Accept": "text/event-stream"}, turn_done)
    assert [e["data"] for e in via_sse] == [e["data"] for e in via_events]
    assert [e["id"] for e in via_sse] == [e["id"] for e in via_events]
    assert via_sse[0]["data"]["sequence"] == 1 and via_sse[-1]["data"]["data"]["status"] == "pending"
    # Resuming /sse after an event gives exactly the rest: nothing lost, nothing repeated.
    middle = via_sse[len(via_sse) // 2]
    rest = sse_events(f"{session_url}/sse", {"Last-Event-ID": middle["id"]}, turn_done)
    assert [e["data"]["sequence"] for e in rest] == [
        e["data"]["sequence"] for e in via_sse if e["data"]["sequence"] > middle["data"]["sequence"]
    ]
    unknown = requests.get(f"{session_url[:-36]}00000000-0000-7000-8000-000000000000/sse", timeout=5)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_upstreams_full_agent_session_workflow(stack):
    """integration_test.rs test_full_agent_session_workflow, against the running stack."""
    base = f"{stack}/v1"
    agent = requests.post(
        f"{base}/agents",
        json={
            "name": "Test Agent",
            "description": "An agent for testing",
            "system_prompt": "You are a helpful assistant",
        },
        timeout=10,
    )
    assert agent.status_code == 201
    agent = agent.json()
    assert agent["name"] == "Test Agent" and agent["status"] == "active"
    assert any(a["id"] == agent["id"] for a in requests.get(f"{base}/agents", timeout=10).json()["data"])
    assert requests.get(f"{base}/agents/{agent['id']}", timeout=10).json()["id"] == agent["id"]
    updated = requests.patch(
        f"{base}/agents/{agent['id']}", json={"name": "Updated Test Agent", "description": "Updated"}, timeout=10
    )
    assert updated.status_code == 200 and updated.json()["name"] == "Updated Test Agent"
    session = requests.post(f"{base}/agents/{agent['id']}/sessions", json={"title": "Test Session"}, timeout=10)
    assert session.status_code == 201 and session.json()["agent_id"] == agent["id"]
    session_url = f"{base}/agents/{agent['id']}/sessions/{session.json()['id']}"
    message = requests.post(
        f"{session_url}/messages",
        json={"message": {"role": "user", "content": [{"type": "text", "text": "Hello!"}]}},
        timeout=10,
    )
    assert message.status_code == 201 and message.json()["role"] == "user"
    sse_events(f"{session_url}/sse", {}, turn_done)
    messages = requests.get(f"{session_url}/messages", timeout=10).json()["data"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert requests.get(session_url, timeout=10).json()["id"] == session.json()["id"]
    events = requests.get(f"{session_url}/events", timeout=10).json()["data"]
    assert events and events[0]["type"] == "message.user"
    assert requests.get(f"{stack}/health", timeout=10).json()["auth_mode"] == "none"
