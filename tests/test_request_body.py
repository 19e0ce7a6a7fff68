"""Request bodies every route parses alike: JSON nested deeper than the parser can go is a malformed body."""

import pytest

from agents.models import Agent
from sessions.models import Message
from tests.factories import make_session

DEEP = 100_000


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_json_nested_too_deeply_is_a_400_validation_error(api, opening):
    session = make_session()
    closing = "]" if opening == "[" else "}"
    body = opening * DEEP + "1" + closing * DEEP
    for method, path in [
        ("POST", "/v1/agents"),
        ("PATCH", f"/v1/agents/{session.agent_id}"),
        ("POST", "/v1/llm-providers"),
        ("POST", f"/v1/agents/{session.agent_id}/sessions/{session.pk}/messages"),
    ]:
        response = api.generic(method, path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.content[:300])
        error = response.json()["error"]
        assert error["code"] == "validation_error" and "nested too deeply" in error["details"]["body"][0]


def nested(depth: int):
    value = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [64, 900])
def test_json_nested_deeper_than_json_max_depth_is_a_400_and_stores_nothing(api, depth):
    """~900 levels passed the parser and failed the insert (a 500); past JSON_MAX_DEPTH (64) it is a 400."""
    session = make_session()
    url = f"/v1/agents/{session.agent_id}/sessions/{session.pk}/messages"
    body = {"message": {"content": [{"type": "text", "text": "hi"}]}, "metadata": nested(depth)}  # depth + 1 levels
    response = api.post(url, body, format="json")
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "at most 64 levels" in error["details"]["body"][0]
    assert not Message.objects.filter(session=session).exists()


def test_json_as_deep_as_json_max_depth_is_accepted(api):
    session = make_session()
    url = f"/v1/agents/{session.agent_id}/sessions/{session.pk}/messages"
    body = {"message": {"content": [{"type": "text", "text": "hi"}]}, "metadata": nested(63)}  # 64 levels in all
    assert api.post(url, body, format="json").status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # Found by the schema fuzzer: a tool policy's key with NUL passed validation and failed the insert (a 500).
        ("/v1/agents", {"name": "a", "system_prompt": "p", "tool_policy": {"ad\x00d": "ask"}}),
        ("messages", {"message": {"content": [{"type": "text", "text": "hi"}]}, "metadata": {"k": "v\x00"}}),
        ("messages", {"message": {"content": [{"type": "text", "text": "hi"}]}, "metadata": {"k\x00": 1}}),
    ],
)
def test_nul_in_a_string_of_a_json_body_is_a_400_and_stores_nothing(api, path, body):
    """PostgreSQL's text and jsonb cannot hold NUL: refused while parsing, whatever field it is in."""
    session = make_session()
    agents_before = Agent.objects.count()
    if path == "messages":
        path = f"/v1/agents/{session.agent_id}/sessions/{session.pk}/messages"
    response = api.post(path, body, format="json")
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "NUL" in error["details"]["body"][0]
    assert Agent.objects.count() == agents_before and not Message.objects.filter(session=session).exists()
