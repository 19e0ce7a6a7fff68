"""The bench's HTTP clients: the API (httpx), SSE readers (httpx streams) and a lean keep-alive client for rates.

Every client talks to a loopback address only (bench/run.py refuses any other target).
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from redis.asyncio import Redis

TOOL_TURN = "What is 7 + 8?"  # with `test_math`: llmsim calls `add`, then answers (two LLM calls)
TURN_END_TYPES = {"turn.completed", "turn.failed", "turn.cancelled"}


class BenchError(Exception):
    pass


class Refused(Exception):
    """The server answered a stream request with something other than 200: EventSource gives up."""


async def bounded(limit: int, factories: Iterable[Callable[[], Awaitable]]) -> list:
    """Run coroutines with at most `limit` in flight; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(factory):
        async with gate:
            return await factory()

    return await asyncio.gather(*(one(f) for f in factories))


def parse_time(value: str) -> float:
    """An RFC 3339 timestamp from the API as a Unix time (the server's clock is the bench's: one machine)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Api:
    def __init__(self, base_url: str, api_key: str | None = None, max_connections: int = 200):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self.headers,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, body: dict | None = None, expect=(200, 201, 202, 204)):
        response = await self.http.request(method, path, json=body)
        if response.status_code not in expect:
            raise BenchError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    async def read(self, path: str, within: float = 30.0):
        """A GET the bench needs for its own bookkeeping: retried through 5xx answers and dropped connections
        (an overloaded server refuses some requests; the figures record that, the bookkeeping must not die of it)."""
        deadline = time.monotonic() + within
        while True:
            try:
                response = await self.http.get(path)
                if response.status_code == 200:
                    return response.json()
                problem = f"{response.status_code}: {response.text[:300]}"
                if response.status_code < 500:
                    raise BenchError(f"GET {path} -> {problem}")
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise BenchError(f"GET {path} kept failing for {within:g} s: {problem}")
            await asyncio.sleep(0.5)

    async def slow_model(self, latency_ms: int) -> str:
        """A model whose every llmsim call waits `latency_ms` before its first token.

        llmsim reads `latency_ms` from the *provider's* settings (runner/resolution.py passes the
        provider's settings), and models have no settings of their own: so a provider of the bench's
        own, leaving the seeded llmsim provider, and the default model on it, instant.
        """
        body = {
            "name": f"bench llmsim {latency_ms} ms",
            "provider_type": "llmsim",
            "settings": {"latency_ms": latency_ms},
        }
        provider = await self.call("POST", "/v1/llm-providers", body)
        model = await self.call("POST", f"/v1/llm-providers/{provider['id']}/models", {"model_id": "llmsim-1"})
        return model["id"]

    async def agent(self, name: str, capabilities: list[str]) -> str:
        body = {"name": name, "system_prompt": "Be brief.", "capabilities": capabilities}
        return (await self.call("POST", "/v1/agents", body))["id"]

    async def sessions(self, agent_id: str, count: int, model_id: str | None = None, limit: int = 16) -> list[str]:
        body = {"model_id": model_id} if model_id else {}
        created = await bounded(
            limit, [lambda: self.call("POST", f"/v1/agents/{agent_id}/sessions", body) for _ in range(count)]
        )
        return [s["id"] for s in created]

    @staticmethod
    def session_path(agent_id: str, session_id: str) -> str:
        return f"/v1/agents/{agent_id}/sessions/{session_id}"

    async def post_message(self, agent_id: str, session_id: str, text: str = TOOL_TURN) -> dict:
        """POST a user message; returns {status, message (or error text), started, finished} with Unix times.

        Sent once: a connection the server closed under a reused keep-alive request (`ReadError`) is an error of the
        run, not retried, so the figures show one (issue 25). The web's keep-alive time-out (75 s in the Procfile)
        outlasts clients' pool expiry (httpx: 5 s), so a client closes an idle connection before the server does."""
        started = time.time()
        body = {"message": {"content": [{"type": "text", "text": text}]}}
        try:
            response = await self.http.post(f"{self.session_path(agent_id, session_id)}/messages", json=body)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return {"status": None, "error": error, "started": started, "finished": time.time()}
        out = {"status": response.status_code, "started": started, "finished": time.time()}
        if response.status_code == 201:
            out["message"] = response.json()
        else:
            out["error"] = response.text[:300]
        return out

    async def all_sessions(self, agent_id: str) -> list[dict]:
        items, offset = [], 0
        while True:
            page = await self.read(f"/v1/agents/{agent_id}/sessions?limit=500&offset={offset}")
            items += page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return items

    async def all_events(self, agent_id: str, session_id: str) -> list[dict]:
        items, after = [], 0
        while True:
            page = await self.read(f"{self.session_path(agent_id, session_id)}/events?after={after}&limit=500")
            items += page["items"]
            if len(page["items"]) < 500:
                return items
            after = items[-1]["sequence"]


class SseClient:
    """One SSE reader of a session's events, keeping every event with the time it arrived.

    It behaves like a browser's EventSource: when an open stream breaks it reconnects after
    `retry_seconds` (Chrome's default is 3 s) with `Last-Event-ID`, so a dropped stream costs delay,
    and a resume that loses or repeats an event shows in the exactly-once check; an answer other than
    200 ends it for good. Every drop is kept in `errors`.

    It reads the socket itself, like RawHttp: a thousand httpx streams in the bench's one process took
    about half a core and put the bench's own queueing into the delivery figures. It reads the `\n`
    line endings our server writes (not `\r\n`), with a chunked, Content-Length or until-close body.
    """

    def __init__(
        self, base_url: str, path: str, headers: dict | None = None, reconnect: bool = True, retry_seconds: float = 3.0
    ):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept: text/event-stream\r\n{extra}"
        self.path = path
        self.reconnect = reconnect
        self.retry_seconds = retry_seconds
        self.opened = asyncio.Event()  # set by the first successful open, or when the client gives up
        self.opened_at: float | None = None
        self.events: list[tuple[float, str, int | None, dict]] = []  # (received, type, sequence, data)
        self.errors: list[str] = []
        self.closed = False
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def error(self) -> str | None:
        return self.errors[-1] if self.errors else None

    def start(self) -> "SseClient":
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # closing: whatever it was doing is over
                pass

    async def _run(self) -> None:
        try:
            while True:
                try:
                    await self._read_once()
                    self.errors.append("stream ended by the server")
                except asyncio.CancelledError:
                    raise
                except Refused as exc:
                    self.errors.append(str(exc))
                    return
                except Exception as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                if not self.reconnect:
                    return
                await asyncio.sleep(self.retry_seconds)
        finally:
            self.closed = True
            self.opened.set()
            self._arrived.set()

    async def _read_once(self) -> None:
        stored = self.stored()
        resume = f"Last-Event-ID: {stored[-1][2]}\r\n" if stored else ""
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        try:
            # Read timeout 60 s: the contract promises a keep-alive at least every 15 s.
            async with asyncio.timeout(60) as idle:
                writer.write(f"{self._head}{resume}\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                if status != 200:
                    raise Refused(f"HTTP {status}")
                if self.opened_at is None:
                    self.opened_at = time.time()
                    self.opened.set()
                lowered = head.lower()
                chunked = b"transfer-encoding: chunked" in lowered
                buffer = b""
                while True:
                    if chunked:
                        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                        if size == 0:
                            return
                        data = (await reader.readexactly(size + 2))[:-2]
                    else:
                        data = await reader.read(65536)
                        if not data:
                            return
                    idle.reschedule(asyncio.get_running_loop().time() + 60)
                    *blocks, buffer = (buffer + data).split(b"\n\n")
                    for block in blocks:
                        self._message(block)
        finally:
            writer.close()

    def _message(self, block: bytes) -> None:
        fields: dict[str, str] = {}
        for line in block.decode().split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                fields[name] = f"{fields[name]}\n{value}" if name == "data" and name in fields else value
        if "data" in fields:
            self._dispatch(fields)

    def _dispatch(self, fields: dict) -> None:
        received = time.time()
        data = json.loads(fields["data"])
        sequence = data.get("sequence") if isinstance(data, dict) else None
        self.events.append((received, fields.get("event", "message"), sequence, data))
        self._arrived.set()

    def stored(self) -> list[tuple[float, str, int | None, dict]]:
        """The events of the log (they have a sequence); `message.delta` is live only."""
        return [e for e in self.events if e[2] is not None]

    async def wait_for(self, predicate: Callable[[tuple], bool], timeout: float, start: int = 0) -> int | None:
        """Index of the first event from `start` on that matches, or None on timeout or a closed stream."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            self._arrived.clear()
            while index < len(self.events):
                if predicate(self.events[index]):
                    return index
                index += 1
            remaining = deadline - time.monotonic()
            if self.closed or remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return None


def turn_of_message(message_id: str) -> Callable[[tuple], bool]:
    return lambda e: e[1] == "message.user" and e[3].get("data", {}).get("message", {}).get("id") == message_id


def turn_started_by(message_id: str) -> Callable[[tuple], bool]:
    """`turn.started {input_message_ids}` names the messages a turn began with (the contract's way to pair them)."""
    return lambda e: e[1] == "turn.started" and message_id in (e[3].get("data", {}).get("input_message_ids") or [])


def turn_ended(turn_id: str) -> Callable[[tuple], bool]:
    def match(e: tuple) -> bool:
        data = e[3]
        if data.get("turn_id") != turn_id:
            return False
        if e[1] in TURN_END_TYPES:
            return True
        return e[1] == "session.status" and data.get("data", {}).get("status") in ("pending", "failed")

    return match


class RawHttp:
    """One keep-alive HTTP/1.1 connection that does as little as possible per request.

    httpx spends about a millisecond of CPU per request; at the API targets (hundreds of requests a
    second on a machine whose two cores also run the server) that alone would cap the figures. This
    client writes the request bytes and reads a Content-Length or chunked body, nothing else.
    """

    def __init__(self, base_url: str, headers: dict | None = None):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head = f"Host: {self.host}:{self.port}\r\n{extra}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                return await self._exchange(method, path, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        typed = "Content-Type: application/json\r\n" if body else ""
        request = f"{method} {path} HTTP/1.1\r\n{self._head}{typed}Content-Length: {len(body)}\r\n\r\n"
        self.writer.write(request.encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if b"content-length" in headers:
            payload = await self.reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            payload = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                payload += (await self.reader.readexactly(size + 2))[:-2]
                if size == 0:
                    break
        else:
            payload = b""
        if headers.get(b"connection") == b"close":
            await self.close()
        return status, payload


class PublishProbe:
    """Subscribes to the deployment's Redis fan-out channel and keeps, for every stored event published, the time
    from its created_at to its arrival on Redis: the worker's share (commit, then publish) of a delivery delay.
    Measures nothing (stop() returns None) when the bench did not start the services (--target)."""

    CHANNEL = "events_channel"  # django-eventstream's Redis channel (sessions/streams/live.py publishes on it)

    def __init__(self, deployment):
        self.url = deployment.services.redis_url() if deployment.services is not None else None
        self.delays: list[float] = []
        self._task: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    def start(self) -> "PublishProbe":
        if self.url:
            self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        client = Redis.from_url(self.url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.CHANNEL)
            self._subscribed.set()
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                arrived = time.time()
                outer = json.loads(message["data"])
                if outer.get("pub_id") is not None:
                    self.delays.append((arrived - parse_time(json.loads(outer["data"])["created_at"])) * 1000)
        finally:
            await client.aclose()

    async def stop(self) -> list[float] | None:
        if self._task is None:
            return None
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):  # stopping: whatever it was reading is over
            pass
        return self.delays
