"""Following a session's event stream across dropped connections.

The server's SSE ids are event sequences; a reconnect sends the last one seen as `Last-Event-ID` and the
server resumes after it, nothing lost or repeated. `message.delta` events have no id (live only): the ones
sent while the connection was down are gone, and the stored `message.assistant` carries the whole text.
"""

import json
import time
from collections.abc import Callable, Iterator

import httpx
from httpx_sse import EventSource

from everruns_cli.client import Api, ApiError

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)  # then 5 s between attempts, for as long as it takes


def parse_cursor(value: str) -> int | None:
    """`7`, or django-eventstream's `<channel>:7`; None for anything else."""
    try:
        cursor = int(value.strip().rsplit(":", 1)[-1])
    except ValueError:
        return None
    return cursor if cursor >= 0 else None


class EventFollower:
    """The events of one session after a cursor, as dicts (the Event JSON), reconnecting as needed.

    `open()` connects now (so a caller can be sure the stream is open before it posts a message); `events()`
    connects if it must and yields until the caller stops. `on_reconnect(reason)` hears every drop."""

    def __init__(
        self,
        api: Api,
        agent_id: str,
        session_id: str,
        *,
        after: int = 0,
        on_reconnect: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.api = api
        self.agent_id = agent_id
        self.session_id = session_id
        self.cursor = after
        self.on_reconnect = on_reconnect or (lambda reason: None)
        self.sleep = sleep
        self.response: httpx.Response | None = None

    def open(self) -> None:
        if self.response is None:
            self.response = self._connect()

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
            self.response = None

    def events(self) -> Iterator[dict]:
        while True:
            self.open()
            try:
                for sse in EventSource(self.response).iter_sse():
                    if not sse.data:
                        continue
                    event = json.loads(sse.data)
                    cursor = parse_cursor(sse.id) if sse.id else None
                    if cursor is not None:
                        self.cursor = cursor
                    yield event
                reason = "the server closed the stream"
            except httpx.TransportError as exc:  # reset, cut mid-chunk, or silent past the read timeout
                reason = f"the stream broke ({type(exc).__name__})"
            finally:
                self.close()
            self.on_reconnect(reason)

    def _connect(self) -> httpx.Response:
        """Connect, retrying while the server is away (refused, 5xx, 429); a 4xx answer is final."""
        attempt = 0
        while True:
            try:
                return self.api.open_stream(self.agent_id, self.session_id, self.cursor)
            except httpx.TransportError as exc:
                reason = f"cannot connect ({type(exc).__name__})"
            except ApiError as exc:
                if exc.status < 500 and exc.status != 429:
                    raise
                reason = f"{exc.status} {exc.message}"
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            attempt += 1
            self.on_reconnect(f"{reason}; retrying in {delay:g}s")
            self.sleep(delay)
