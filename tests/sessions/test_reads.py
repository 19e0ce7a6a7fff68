"""GET session served in front of Django (sessions/reads.py) answers exactly as Django's view does: for each request
the front's answer is compared with Django's for the same request (`?format=json` sends it on to Django)."""

import asyncio
import json
import uuid

import pytest

from everruns.api.keys import api_key_create
from everruns.front.bridge import DjangoBridge
from sessions.reads import ReadRouter
from tests.factories import make_agent, make_session

UNCOMPARED = {b"content-length"}  # the bodies are compared themselves


def _get(app, path: str, query: str = "", headers: dict | None = None) -> tuple[int, dict, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    raw = [(b"host", b"127.0.0.1")] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": raw,
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5),
    }
    asyncio.run(app(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k: v for k, v in start["headers"] if k not in UNCOMPARED}, body


class _Recorded:
    """Django's side, noting that it answered."""

    def __init__(self):
        self.bridge, self.calls = DjangoBridge(), 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        return await self.bridge(scope, receive, send)


@pytest.fixture
def front():
    django = _Recorded()
    return ReadRouter(django), django


def _same_as_django(front, path: str, headers: dict | None = None) -> tuple[int, dict]:
    app, django = front
    django.calls = 0
    status, head, body = _get(app, path, headers=headers)
    assert django.calls == 0, "the front passed it on"
    django_status, django_head, django_body = _get(app, path, "format=json", headers)
    assert django.calls == 1
    assert (status, json.loads(body)) == (django_status, json.loads(django_body))
    assert head == django_head
    return status, json.loads(body)


def _path(agent_id, session_id) -> str:
    return f"/v1/agents/{agent_id}/sessions/{session_id}"


def test_a_session_and_the_ones_not_found_are_answered_as_django_answers(seeded_tx, front):
    session = make_session(title="polled")
    status, body = _same_as_django(front, _path(session.agent_id, session.pk))
    assert status == 200 and body["title"] == "polled" and body["status"] == "pending"
    assert _same_as_django(front, _path(session.agent_id, uuid.uuid4()))[0] == 404
    assert _same_as_django(front, _path(make_agent().pk, session.pk))[0] == 404  # another agent's


def test_with_api_keys_the_callers_are_checked_as_django_checks_them(seeded_tx, front, settings):
    settings.AUTH_MODE = "api_key"
    session = make_session()
    path = _path(session.agent_id, session.pk)
    _, secret = api_key_create(name="reader", scope="agents")
    assert _same_as_django(front, path, {"Authorization": f"Bearer {secret}"})[0] == 200
    assert _same_as_django(front, path)[0] == 401
    assert _same_as_django(front, path, {"Authorization": "Bearer evr_not_a_key"})[0] == 401


def test_what_the_front_would_not_answer_as_django_goes_to_django(seeded_tx, front):
    app, django = front
    session = make_session()
    path = _path(session.agent_id, session.pk)
    assert _get(app, path, headers={"Accept": "text/html"})[0] == 406
    assert _get(app, f"{path}/messages")[0] == 200
    assert django.calls == 2
