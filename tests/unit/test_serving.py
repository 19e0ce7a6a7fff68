"""Which bind the open API refuses (everruns/front/serving.py), from uvicorn's command line and per request."""

import asyncio
import json

import pytest

from everruns.front import serving


@pytest.mark.parametrize(
    "argv,environ,host",
    [
        ([".venv/bin/uvicorn", "everruns.asgi:application", "--host", "0.0.0.0"], {}, "0.0.0.0"),
        (["/x/bin/uvicorn", "app", "--host=::"], {}, "::"),
        (["/x/bin/uvicorn", "app"], {}, "127.0.0.1"),  # uvicorn's default
        (["/x/bin/uvicorn", "app"], {"UVICORN_HOST": "10.0.0.2"}, "10.0.0.2"),
        (["/x/bin/uvicorn", "app", "--host", "127.0.0.1"], {"UVICORN_HOST": "0.0.0.0"}, "127.0.0.1"),
        (["/x/lib/uvicorn/__main__.py", "app", "--host", "0.0.0.0"], {}, "0.0.0.0"),
        (["/x/bin/uvicorn", "app", "--uds", "/run/web.sock"], {}, None),
        (["/x/bin/uvicorn", "app", "--fd", "3"], {}, None),
        (["/x/bin/gunicorn", "-b", "0.0.0.0"], {}, ""),  # not uvicorn's CLI: checked per request
    ],
)
def test_the_bind_host_from_uvicorns_command_line(argv, environ, host):
    assert serving.uvicorn_bind_host(argv, environ) == host


@pytest.mark.parametrize(
    "host,refused",
    [("0.0.0.0", True), ("::", True), ("10.1.2.3", True), ("web.example", True), ("127.0.0.1", False)]
    + [("127.0.0.2", False), ("::1", False), ("[::1]", False), ("localhost", False)],
)
def test_only_loopback_binds_are_allowed_open(host, refused):
    refusal = serving.open_bind_refusal(["/x/bin/uvicorn", "app", "--host", host], {})
    assert (refusal is not None) is refused
    if refused:
        assert "ALLOW_OPEN_ON_NETWORK=true" in refusal


def call(app, server):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "server": server, "path": "/v1/agents"}, receive, send))
    return sent


async def ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})


@pytest.mark.parametrize("server", [("127.0.0.1", 9000), ("::1", 9000), None])
def test_requests_on_loopback_pass(server):
    assert call(serving.LoopbackOnly(ok), server)[0]["status"] == 200


def test_a_request_on_a_network_address_is_refused_with_the_envelope():
    sent = call(serving.LoopbackOnly(ok), ("192.168.1.5", 9000))
    assert sent[0]["status"] == 403
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == "forbidden" and "192.168.1.5" in error["message"]
