"""Access and limits on real web processes in AUTH_MODE=api_key: what is decided in front of Django's
handler (event streams, request bodies, CORS) and what several processes share (rate limits)."""

import socket
import time

import pytest
import requests

from everruns.api.keys import api_key_create
from tests import processes
from tests.factories import make_session

pytestmark = pytest.mark.e2e
ORIGIN = "http://app.example"


@pytest.fixture(scope="module")
def secured(django_db_setup, log_dir):
    """Two web processes on the test database, keys required, small limits."""
    env = {
        **processes.WEB_ENV,
        "AUTH_MODE": "api_key",
        "WRITE_RATE_LIMIT": 6,
        "MAX_STREAMS_PER_KEY": 2,
        "MAX_REQUEST_BYTES": 1024 * 1024,
        "CORS_ALLOWED_ORIGINS": ORIGIN,
    }
    started = [processes.start_web(log_dir, **env) for _ in range(2)]
    yield [url for _, url in started]
    for proc, _ in started:
        proc.stop()


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def test_a_stream_needs_a_key_or_its_token(seeded_tx, secured):
    url = secured[0]
    _, secret = api_key_create(name="streams")
    session = make_session()
    events = f"{url}/v1/agents/{session.agent_id}/sessions/{session.pk}/events"
    sse = {"Accept": "text/event-stream"}
    refused = requests.get(events, headers=sse, timeout=5)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"
    with requests.get(events, headers={**sse, **bearer(secret)}, stream=True, timeout=5) as ok:
        assert ok.status_code == 200 and ok.headers["content-type"] == "text/event-stream"
    token = requests.post(
        f"{url}/v1/agents/{session.agent_id}/sessions/{session.pk}/stream-token", json={}, headers=bearer(secret)
    ).json()["token"]
    with requests.get(f"{events}?token={token}", headers=sse, stream=True, timeout=5) as by_token:
        assert by_token.status_code == 200
    other = make_session()
    wrong = f"{url}/v1/agents/{other.agent_id}/sessions/{other.pk}/events?token={token}"
    assert requests.get(wrong, headers=sse, timeout=5).status_code == 401


def test_open_streams_are_capped_per_key(seeded_tx, secured):
    url = secured[0]
    _, secret = api_key_create(name="many streams")
    session = make_session()
    events = f"{url}/v1/agents/{session.agent_id}/sessions/{session.pk}/events"
    headers = {"Accept": "text/event-stream", **bearer(secret)}
    held = [requests.get(events, headers=headers, stream=True, timeout=5) for _ in range(2)]
    try:
        assert [r.status_code for r in held] == [200, 200]
        third = requests.get(events, headers=headers, timeout=5)
        assert third.status_code == 429 and third.headers["Retry-After"]
    finally:
        for response in held:
            response.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server sees the closed streams and gives their slots back
        again = requests.get(events, headers=headers, stream=True, timeout=5)
        again.close()
        if again.status_code == 200:
            break
        time.sleep(0.2)
    assert again.status_code == 200


def test_writes_are_rate_limited_across_web_processes(seeded_tx, secured):
    _, secret = api_key_create(name="writer")
    body = {"name": "a", "system_prompt": "p"}
    # Both processes count in one Redis window: 6 writes a minute between them, then 429.
    for _ in range(5):  # stay clear of a minute boundary, which would start a new window mid-test
        if time.time() % 60 < 50:
            break
        time.sleep(2)
    codes = [
        requests.post(f"{secured[i % 2]}/v1/agents", json=body, headers=bearer(secret)).status_code for i in range(7)
    ]
    assert codes[:6] == [201] * 6
    assert codes[6] == 429
    limited = requests.post(f"{secured[1]}/v1/agents", json=body, headers=bearer(secret))
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 61


def _raw(url: str, request: bytes, chunks=()) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed while we were still sending: that is the point
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after its answer
            answer += chunk
        return answer


def test_a_large_content_length_is_refused_before_the_body_is_read(seeded_tx, secured):
    _, secret = api_key_create(name="big")
    started = time.monotonic()
    answer = _raw(
        secured[0],
        (
            f"POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n"
            "Content-Type: application/json\r\nContent-Length: 500000000\r\n\r\n"
        ).encode(),
    )
    assert answer.startswith(b"HTTP/1.1 413") and b"payload_too_large" in answer
    assert time.monotonic() - started < 5  # no wait for 500 MB that never come


def test_a_chunked_body_over_the_limit_is_refused(seeded_tx, secured):
    _, secret = api_key_create(name="chunked")
    head = (
        f"POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    answer = _raw(secured[0], head, [chunk] * 640)  # 40 MiB, far over the 1 MiB limit
    assert answer.startswith(b"HTTP/1.1 413") and b"payload_too_large" in answer


def test_cors_answers_listed_origins_only(seeded_tx, secured):
    url = secured[0]
    preflight = requests.options(
        f"{url}/v1/agents",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"]
    _, secret = api_key_create(name="cors")
    listed = requests.get(f"{url}/v1/agents", headers={"Origin": ORIGIN, **bearer(secret)})
    assert listed.headers["Access-Control-Allow-Origin"] == ORIGIN
    stranger = requests.get(f"{url}/v1/agents", headers={"Origin": "http://evil.example", **bearer(secret)})
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_cors_is_off_by_default(stack):
    response = requests.get(f"{stack}/v1/agents", headers={"Origin": ORIGIN})
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response.headers
