"""Bounds on what one chat request may carry, on the routes served before Django (a real uvicorn): JSON at
most JSON_MAX_DEPTH levels deep, at most CHAT_MAX_MESSAGES messages; each refused quickly and storing nothing."""

import time

import pytest
import requests

from sessions.models import Message
from tests.factories import make_session

pytestmark = pytest.mark.e2e


def nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def routes(web, session):
    base = f"{web}/v1/agents/{session.agent_id}"
    agui = {"threadId": str(session.pk), "runId": "r", "messages": [{"id": "u1", "role": "user", "content": "hi"}]}
    chat = {"messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}
    return {f"{base}/ag-ui": agui, f"{base}/sessions/{session.pk}/chat": chat}


@pytest.mark.parametrize("depth", [65, 900])
def test_json_nested_deeper_than_the_limit_is_a_400_on_the_chat_routes(seeded_tx, web, depth):
    session = make_session()
    for url, body in routes(web, session).items():
        response = requests.post(url, json={**body, "state": nested(depth)}, timeout=10)
        assert response.status_code == 400, (url, response.text[:300])
        error = response.json()["error"]
        assert error["code"] == "validation_error" and "at most 64 levels" in error["details"]["body"][0]
    assert not Message.objects.filter(session=session).exists()


def test_more_messages_than_a_request_may_carry_is_a_quick_413(seeded_tx, web):
    session = make_session()
    base = f"{web}/v1/agents/{session.agent_id}"
    # 50,000 tool messages (under MAX_REQUEST_BYTES) took 19 s of a web thread before they were found invalid.
    agui_messages = [{"id": f"m{i}", "role": "tool", "toolCallId": f"c{i}", "content": "x"} for i in range(50_000)]
    run_input = {"threadId": str(session.pk), "runId": "r", "messages": agui_messages}
    ui_messages = [{"id": f"u{i}", "role": "user", "parts": [{"type": "text", "text": "hi"}]} for i in range(1001)]
    for url, body in [(f"{base}/ag-ui", run_input), (f"{base}/sessions/{session.pk}/chat", {"messages": ui_messages})]:
        started = time.monotonic()
        response = requests.post(url, json=body, timeout=30)
        assert time.monotonic() - started < 5  # a regression guard (it took 19 s of a web thread), not a benchmark
        assert response.status_code == 413, (url, response.text[:300])
        error = response.json()["error"]
        assert error["code"] == "payload_too_large" and "At most 1000 messages" in error["details"]["messages"][0]
    assert not Message.objects.filter(session=session).exists()


def test_a_request_with_as_many_messages_as_allowed_is_served(seeded_tx, web):
    session = make_session()
    history = [{"id": f"u{i}", "role": "user", "parts": [{"type": "text", "text": "hi"}]} for i in range(1000)]
    url = f"{web}/v1/agents/{session.agent_id}/sessions/{session.pk}/chat"
    with requests.post(url, json={"messages": history}, stream=True, timeout=(5, 30)) as response:
        assert response.status_code == 200
    assert Message.objects.filter(session=session, role="user").exists()
