"""How the web process is served: uvicorn's HTTP protocol with a header time-out, and the refusal to serve
the open API (`AUTH_MODE=none`) on a network address. docs/security.md says why and how to set them.

The open API is for `make run` on 127.0.0.1. Two checks keep it there unless ALLOW_OPEN_ON_NETWORK says
otherwise: at start, the address uvicorn's command line binds (the Procfile's `--host 0.0.0.0`) refuses to
load the application; and, for servers whose bind we cannot see (another ASGI server, a socket handed over
with `--fd`), every request that arrived on a non-loopback local address is answered 403.
"""

import ipaddress
import json
from pathlib import Path

import h11
from django.conf import settings
from uvicorn.protocols.http.h11_impl import H11Protocol as UvicornH11Protocol

from everruns.api.errors import envelope

OPEN_ON_NETWORK = (
    "AUTH_MODE=none (an open API, no keys) refuses to serve on {where}: anyone who can reach the port could "
    "use it. Set REDIS_URL (or AUTH_MODE=api_key) and SECRET_KEY for the production shape, bind 127.0.0.1 "
    "(make run), or set ALLOW_OPEN_ON_NETWORK=true if this network is yours alone."
)


def is_loopback(host: str | None) -> bool:
    if host is None:
        return True  # a Unix socket: local by construction
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve to a network address


def uvicorn_bind_host(argv: list[str], environ) -> str | None:
    """The host uvicorn's command line binds: `--host`, else UVICORN_HOST, else uvicorn's default 127.0.0.1.
    None when it binds a Unix socket (`--uds`) or a socket it was given (`--fd`, checked per request
    instead), and "" when this process is not uvicorn's command line."""
    program = Path(argv[0]) if argv else Path()
    if program.name != "uvicorn" and not (program.name == "__main__.py" and program.parent.name == "uvicorn"):
        return ""
    host = environ.get("UVICORN_HOST") or "127.0.0.1"
    for i, arg in enumerate(argv):
        name, _, value = arg.partition("=")
        if name in ("--uds", "--fd"):
            return None
        if name == "--host":
            host = value or (argv[i + 1] if i + 1 < len(argv) else host)
    return host


def open_bind_refusal(argv: list[str], environ) -> str | None:
    """Why this process may not start with the open API, or None."""
    host = uvicorn_bind_host(argv, environ)
    if host and not is_loopback(host):
        return OPEN_ON_NETWORK.format(where=f"{host} (uvicorn --host)")
    return None


class LoopbackOnly:
    """ASGI: with the open API, a request that arrived on a non-loopback local address gets a 403."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        server = scope.get("server")
        if scope["type"] in ("http", "websocket") and server and not is_loopback(server[0]):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            where = f"the network address {server[0]}"
            body = json.dumps(envelope("forbidden", OPEN_ON_NETWORK.format(where=where))).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class H11Protocol(UvicornH11Protocol):
    """uvicorn 0.54's h11 protocol (what `--http auto` picks without httptools) with a header time-out, which
    uvicorn lacks: it arms its keep-alive timer only after a response, so a connection that sends nothing,
    or trickles its request line and headers a byte at a time, stays open for good. Here the request line and
    headers must all arrive within WEB_HEADER_TIMEOUT_SECONDS of the connection's opening, or of the first
    byte of a further request on a kept-alive connection; otherwise the connection is closed. Bodies and
    responses (event streams) are not timed here. Re-check the overridden methods on a uvicorn upgrade."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._header_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._header_timer is None:
            self._arm_header_timer()  # a further request begins on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # its request line and headers are in (or it failed)
            self._cancel_header_timer()

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(settings.WEB_HEADER_TIMEOUT_SECONDS, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
