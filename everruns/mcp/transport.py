"""The HTTP client every MCP connection uses: the address guard at every TCP connect, no redirects, and a bound
on the size of each message the server sends.

- Every TCP connection (the first request, a reconnect, the SSE transport's POST endpoint) goes through a
  network backend that resolves the host itself with `netguard.resolve_checked` and connects to the checked
  address (no second lookup to rebind); a host that MCP_ALLOWED_HOSTS lists is connected to by name.
  (The coordinator may switch this to netguard's shared guarded transport once it lands: `_GuardedBackend` is
  the only part that would go.)
- Redirects are not followed (`follow_redirects=False`): the SDK raises on a 3xx like on any other non-2xx.
- A response body is counted as it streams: one JSON answer, or one event of an event stream, over
  MCP_MAX_RESULT_BYTES ends the connection, and so does a stream that breaks. Either way `on_broken(reason)` is
  told first, so the calls waiting on this connection end at once with that reason (mcp 1.28.1 drops a broken
  response stream silently and leaves its request waiting).
"""

import socket
from collections.abc import AsyncIterator, Callable

import anyio
import httpcore
import httpx

from everruns.core.netguard import RefusedAddress, resolve_checked


class _GuardedBackend(httpcore.AnyIOBackend):
    def __init__(self, allowed_hosts: list[str]):
        super().__init__()
        self.allowed = [h.lower() for h in allowed_hosts]

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        name = host.decode() if isinstance(host, bytes) else host
        try:
            # getaddrinfo blocks: a worker thread for the lookup, once per connection (connections are reused).
            addresses = await anyio.to_thread.run_sync(resolve_checked, name, port, self.allowed)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {name}: {exc}") from None
        except RefusedAddress as exc:
            raise httpcore.ConnectError(f"{exc} (MCP_ALLOWED_HOSTS can allow it)") from None
        target = host if addresses is None else str(addresses[0])
        return await super().connect_tcp(target, port, timeout, local_address, socket_options)


class _BoundedStream(httpx.AsyncByteStream):
    def __init__(self, stream, *, limit: int, events: bool, on_broken: Callable[[str], None]):
        self.stream, self.limit, self.events, self.on_broken = stream, limit, events, on_broken

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = line = 0  # bytes of the message so far; of the line so far (an event stream's)
        try:
            async for chunk in self.stream:
                if not self.events:
                    size += len(chunk)
                else:
                    pieces = chunk.split(b"\n")
                    for i, piece in enumerate(pieces):
                        size, line = size + len(piece), line + len(piece)
                        if size > self.limit:
                            break
                        if i < len(pieces) - 1:  # a line ends here; an empty one ends the event
                            size = 0 if line == 0 or (line == 1 and piece == b"\r") else size + 1
                            line = 0
                if size > self.limit:
                    reason = f"the server's answer is over MCP_MAX_RESULT_BYTES ({self.limit} bytes)"
                    self.on_broken(reason)
                    raise httpx.ReadError(reason)
                yield chunk
        except httpx.HTTPError as exc:
            self.on_broken(f"the connection to the MCP server broke: {exc or type(exc).__name__}")
            raise

    async def aclose(self) -> None:
        await self.stream.aclose()


class _BoundedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncHTTPTransport, *, limit: int, on_broken: Callable[[str], None]):
        self.inner, self.limit, self.on_broken = inner, limit, on_broken

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        events = response.headers.get("content-type", "").lower().startswith("text/event-stream")
        response.stream = _BoundedStream(response.stream, limit=self.limit, events=events, on_broken=self.on_broken)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def guarded_client(
    *,
    headers: dict[str, str],
    connect_timeout: float,
    allowed_hosts: list[str],
    max_message_bytes: int,
    on_broken: Callable[[str], None],
) -> httpx.AsyncClient:
    inner = httpx.AsyncHTTPTransport(trust_env=False)
    # Private attributes, checked with httpx 0.28.1 (pinned) and httpcore 1.0.9, as in runner/tools/web_fetch.py:
    # the transport takes no network backend, so its pool is swapped for one on ours (keeping httpx's SSL context).
    pool = inner._pool
    inner._pool = httpcore.AsyncConnectionPool(
        ssl_context=pool._ssl_context, network_backend=_GuardedBackend(allowed_hosts)
    )
    return httpx.AsyncClient(
        transport=_BoundedTransport(inner, limit=max_message_bytes, on_broken=on_broken),
        headers=headers,
        # No read limit: an event stream is quiet between messages, and each call has its own time-out.
        timeout=httpx.Timeout(connect_timeout, read=None),
        follow_redirects=False,
        trust_env=False,
    )
