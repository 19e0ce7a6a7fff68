"""The routes served in front of Django's handler (event streams, the chat front-ends) on real web processes:
the Host check and the JSON content type (AUTH_MODE=none), what a stream token may do, a staff cookie after a
password change, and what a stalled reader may make a process hold (docs/security.md)."""

import socket
import time

import pytest
import requests
from django.test import Client

from everruns.api.keys import api_key_create
from sessions.log import append_message
from sessions.models import Message
from tests import processes
from tests.conftest import wait_for
from tests.factories import make_session

pytestmark = pytest.mark.e2e
BUFFER = 256 * 1024
STREAMS_PER_KEY = 3
SSE = {"Accept": "text/event-stream"}
CHAT = {"messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}


@pytest.fixture(scope="module")
def guarded(django_db_setup, log_dir):
    """A web process that needs keys, with a small stream buffer and per-key stream cap, and /bench/streams."""
    env = {
        **processes.WEB_ENV,
        "AUTH_MODE": "api_key",
        "WRITE_RATE_LIMIT": 0,
        "EVERRUNS_BENCH_ROUTES": "true",
        "SSE_STREAM_BUFFER_BYTES": BUFFER,
        "MAX_STREAMS_PER_KEY": STREAMS_PER_KEY,
    }
    proc, url = processes.start_web(log_dir, **env)
    yield url
    proc.stop()


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def session_url(base: str, session) -> str:
    return f"{base}/v1/agents/{session.agent_id}/sessions/{session.pk}"


def refusal(method: str, url: str, **kwargs) -> tuple[int, str | None]:
    """(status, error code) of a request expected to be refused; a stream that opens instead (the check missing)
    is closed at once rather than read for ever."""
    with requests.request(method, url, stream=True, timeout=5, **kwargs) as response:
        if response.headers.get("content-type") != "application/json":
            return response.status_code, None
        return response.status_code, response.json()["error"]["code"]


def stream_token(base: str, session, secret: str) -> str:
    response = requests.post(f"{session_url(base, session)}/stream-token", json={}, headers=bearer(secret), timeout=5)
    return response.json()["token"]


# --- Host and Content-Type (AUTH_MODE=none: the checks a browser's DNS rebinding or form post meets) --------------
def test_the_routes_in_front_of_django_refuse_a_host_not_in_allowed_hosts(seeded_tx, web):
    session = make_session()
    base = session_url(web, session)
    evil = {"Host": "rebound.example"}
    refused = [
        refusal("GET", f"{base}/events", headers={**SSE, **evil}),
        refusal("POST", f"{base}/chat", json=CHAT, headers=evil),
        refusal("GET", f"{base}/chat/stream", headers=evil),
        refusal("POST", f"{web}/v1/agents/{session.agent_id}/ag-ui", json={}, headers=evil),
    ]
    assert refused == [(400, "validation_error")] * 4
    assert requests.get(f"{base}", headers=evil, timeout=5).status_code == 400  # as Django's own routes answer
    with requests.get(f"{base}/events", headers=SSE, stream=True, timeout=5) as allowed:  # Host: 127.0.0.1:port
        assert allowed.status_code == 200
    assert requests.get(f"{base}/chat/stream", timeout=5).status_code == 204
    assert not Message.objects.filter(session=session).exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_the_chat_routes_take_json_only(seeded_tx, web, content_type):
    session = make_session()
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}'
    run_input = b'{"threadId": "t1", "runId": "r", "messages": [{"id": "u1", "role": "user", "content": "hi"}]}'
    chat = refusal("POST", f"{session_url(web, session)}/chat", data=body, headers=headers)
    agui = refusal("POST", f"{web}/v1/agents/{session.agent_id}/ag-ui", data=run_input, headers=headers)
    assert chat == agui == (415, "unsupported_media_type")
    assert not Message.objects.exists()


# --- stream tokens read, and die with their key -------------------------------------------------------------------
def test_a_stream_token_does_not_write_and_dies_with_its_key(seeded_tx, guarded):
    key, secret = api_key_create(name="app")
    _, admin = api_key_create(name="root", scope="admin")
    session = make_session()
    base = session_url(guarded, session)
    token = stream_token(guarded, session, secret)
    run_input = {"threadId": str(session.pk), "runId": "r", "messages": [{"id": "u1", "role": "user", "content": "x"}]}
    writes = [  # (approvals travel in these requests' messages)
        refusal("POST", f"{base}/chat?token={token}", json=CHAT),
        refusal("POST", f"{guarded}/v1/agents/{session.agent_id}/ag-ui?token={token}", json=run_input),
        refusal("POST", f"{base}/messages?token={token}", json={"message": {"content": []}}),
    ]
    assert writes == [(401, "unauthenticated")] * 3
    assert not Message.objects.filter(session=session).exists()
    with requests.get(f"{base}/events?token={token}", headers=SSE, stream=True, timeout=5) as reading:
        assert reading.status_code == 200
    assert requests.get(f"{base}/chat/stream?token={token}", timeout=5).status_code == 204
    assert requests.delete(f"{guarded}/v1/api-keys/{key.pk}", headers=bearer(admin), timeout=5).status_code == 204
    for url in (f"{base}/events?token={token}", f"{base}/chat/stream?token={token}"):
        assert refusal("GET", url, headers=SSE) == (401, "unauthenticated")


# --- a staff cookie is checked as Django checks it ----------------------------------------------------------------
def test_a_password_change_ends_the_old_cookies_streams(seeded_tx, guarded, django_user_model):
    staff = django_user_model.objects.create_user("ops", password="old-password", is_staff=True)
    browser = Client()
    browser.force_login(staff)
    cookie = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}"}
    base = session_url(guarded, make_session())
    with requests.get(f"{base}/events", headers={**SSE, **cookie}, stream=True, timeout=5) as before:
        assert before.status_code == 200
    assert requests.get(f"{base}/chat/stream", headers=cookie, timeout=5).status_code == 204
    staff.set_password("new-password")
    staff.save()
    for url in (f"{base}/events", f"{base}/chat/stream"):
        assert refusal("GET", url, headers={**SSE, **cookie}) == (401, "unauthenticated")


# --- what stalled readers may make a process hold -----------------------------------------------------------------
def stalled_stream(base: str, path: str, headers: dict) -> socket.socket:
    """A stream whose reader reads the response head and then nothing: a tiny receive window, never emptied."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sock.settimeout(10)
    assert sock.recv(12) == b"HTTP/1.1 200"
    return sock


def streams(base: str) -> dict:
    return requests.get(f"{base}/bench/streams", timeout=5).json()


def test_stalled_readers_make_a_process_hold_at_most_the_stream_buffer_each(seeded_tx, guarded):
    _, secret = api_key_create(name="slow reader")
    session = make_session()
    for i in range(80):  # ~16 MB of history: far more than the socket buffers between us and the server take
        append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": f"{i % 10}" * 200_000}])
    path = session_url("", session) + "/events"
    token = stream_token(guarded, session, secret)
    held = [stalled_stream(guarded, path, {**SSE, **bearer(secret)}) for _ in range(STREAMS_PER_KEY - 1)]
    held.append(stalled_stream(guarded, f"{path}?token={token}", SSE))  # a key's tokens count against its cap
    try:
        wait_for(lambda: streams(guarded)["open"] == STREAMS_PER_KEY, message="the streams open")
        # The socket buffers between us take a few MB first; then a stream's writes wait, with history in hand.
        wait_for(lambda: streams(guarded)["held_bytes"] > 0, timeout=30, message="a stalled stream holding history")
        time.sleep(2)  # the others stall too
        stuck = streams(guarded)
        assert stuck["max_held_bytes"] <= BUFFER  # what any one stream held at once, all along
        assert 0 < stuck["held_bytes"] <= STREAMS_PER_KEY * BUFFER
        for url, headers in ((f"{guarded}{path}", bearer(secret)), (f"{guarded}{path}?token={token}", {})):
            assert refusal("GET", url, headers={**SSE, **headers}) == (429, "rate_limited")
    finally:
        for sock in held:
            sock.close()
    closed = {"open": 0, "held_bytes": 0}
    wait_for(lambda: streams(guarded).items() >= closed.items(), message="the streams' memory back")
    assert streams(guarded)["max_held_bytes"] <= BUFFER
    with requests.get(f"{guarded}{path}", headers={**SSE, **bearer(secret)}, stream=True, timeout=5) as again:
        assert again.status_code == 200
