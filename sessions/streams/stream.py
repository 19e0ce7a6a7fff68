"""The SSE stream of one session: history from the log, then live, exactly once and in order.

The listener is registered before the first read of the log, so every event committed after that
read is queued for it; queued events are matched against the cursor by sequence: a duplicate is
dropped, a gap (an event whose wake-up is late or was lost) sends the stream back to the log.

`log_items` is that loop over items `(sequence or None, type, data_json)`; `event_stream` writes them
as our SSE, and the front-end protocol streams (sessions/chat/sse.py) map them to AG-UI or the AI SDK.
"""

import asyncio
import functools
import itertools
import json
import time
from collections.abc import Iterable

from django.conf import settings
from django_eventstream.event import Event as LiveItem
from django_eventstream.views import Listener, get_listener_manager

from everruns.api.pagination import FETCH_ROWS, bounded_items, streamed
from everruns.front.bridge import on_db_thread
from sessions.log import event_to_dict
from sessions.selectors import event_list
from sessions.streams.live import channel_for

BATCH = 500  # events per read of the log, at most; and at most MAX_PAGE_BYTES of them past the first
# What one ASGI body message of a stream carries at most: uvicorn hands a message to the transport whole and
# waits, before the next, until the transport's buffer is below its high-water mark (64 KiB), so a reader that
# stops reading leaves at most about this much more in the transport's buffer.
SEND_CHUNK = 64 * 1024
KEEPALIVE = None  # what log_items yields when the stream was idle for SSE_KEEPALIVE_SECONDS

# An item of the stream: (event type; sequence, or None for a live-only event; the Event JSON, one line).
Item = tuple[str, int | None, str]


def read_events_after(
    session_id, after: int, limit: int = BATCH, max_bytes: int | None = None
) -> tuple[list[Item], int, bool]:
    """One read of the log: the items of the events after `after`, the sequence of the last one, and
    whether the log may hold more (the batch is full by count, or by size: `max_bytes`, MAX_PAGE_BYTES unless
    given). An open stream holds no connection: its reads run on the web threads (everruns.front.bridge.on_db_thread),
    on theirs.

    A live stream's read mostly finds a few events or none: the first FETCH_ROWS come from one plain
    query; only a longer catch-up goes on with a cursor in a transaction (pagination.streamed), a few
    round trips more."""
    max_bytes = settings.MAX_PAGE_BYTES if max_bytes is None else max_bytes
    first = list(event_list(session_id=session_id, after=after)[: min(FETCH_ROWS, limit)])
    if len(first) < min(FETCH_ROWS, limit) or len(first) == limit:
        return _batch(first, after, limit, max_bytes)
    with streamed(event_list(session_id=session_id, after=first[-1].sequence)[: limit - len(first)]) as rest:
        return _batch(itertools.chain(first, rest), after, limit, max_bytes)


def _batch(rows, after: int, limit: int, max_bytes: int) -> tuple[list[Item], int, bool]:
    items, complete = bounded_items(
        rows,
        lambda e: (e.type, e.sequence, json.dumps(event_to_dict(e), separators=(",", ":"))),
        max_bytes,
        size=lambda item: len(item[2]),
    )
    last = items[-1][1] if items else after
    return items, last, len(items) == limit or not complete


def read_stream_batch(session_id, after: int) -> tuple[list[Item], int, bool]:
    """An open stream's read of the log: at most SSE_STREAM_BUFFER_BYTES of events (an event larger than that comes
    alone, whole), what a stream holds in hand until its reader has taken it."""
    return read_events_after(session_id, after, max_bytes=settings.SSE_STREAM_BUFFER_BYTES)


class StreamMemory:
    """What this process's open streams hold of their bodies (encoded, not yet taken by the server's transport):
    in all now, and the most one stream held at once since the process started."""

    def __init__(self):
        self.open = 0
        self.held_bytes = 0
        self.max_held_bytes = 0

    def snapshot(self) -> dict:
        return {"open": self.open, "held_bytes": self.held_bytes, "max_held_bytes": self.max_held_bytes}


stream_memory = StreamMemory()


class Outbox:
    """One stream's body, written in SEND_CHUNK pieces, each once the server's transport has room: a reader that
    stops reading leaves this stream holding what it has in hand (one batch of the log, SSE_STREAM_BUFFER_BYTES),
    counted in stream_memory and given back as it is sent, and all of it when the stream closes."""

    def __init__(self, send):
        self.send = send
        self.held = 0

    def __enter__(self):
        stream_memory.open += 1
        return self

    def __exit__(self, *exc):
        self._release(self.held)
        stream_memory.open -= 1

    def _release(self, size: int) -> None:
        self.held -= size
        stream_memory.held_bytes -= size

    async def write(self, text: str, last: bool = False) -> None:
        data = text.encode()
        self.held += len(data)
        stream_memory.held_bytes += len(data)
        stream_memory.max_held_bytes = max(stream_memory.max_held_bytes, self.held)
        unsent = len(data)
        try:
            for start in range(0, len(data) or 1, SEND_CHUNK):
                piece = data[start : start + SEND_CHUNK]
                more = not last or start + SEND_CHUNK < len(data)
                await self.send({"type": "http.response.body", "body": piece, "more_body": more})
                unsent -= len(piece)
                self._release(len(piece))
        finally:
            self._release(unsent)  # the client went away mid-write


_reads: asyncio.Semaphore | None = None
_in_flight: dict[tuple, asyncio.Task] = {}


async def _read(fn, *args):
    """A stream's read of the log. Streams of one session that read from the same cursor while such a read is
    under way share it (the viewers of one session mostly stand at the same place): one query, not one per
    stream. The read is a task of its own, so a stream that goes away leaves it to the others."""
    key = (fn, *args)
    task = _in_flight.get(key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():  # (a test's loop that ended)
        task = asyncio.ensure_future(_read_on_thread(fn, *args))
        _in_flight[key] = task
        task.add_done_callback(functools.partial(_read_done, key))
    return await asyncio.shield(task)


def _read_done(key: tuple, task: asyncio.Task) -> None:
    if _in_flight.get(key) is task:
        del _in_flight[key]
    if not task.cancelled():
        task.exception()  # retrieved here too: no warning when every stream that wanted it went away


async def _read_on_thread(fn, *args):
    """On the web threads, at most WEB_THREADS - 2 reads at once: when thousands of streams read together (a
    Redis reconnect sends them all back to the log), two threads stay free for requests."""
    global _reads
    if _reads is None:
        _reads = asyncio.Semaphore(max(1, settings.WEB_THREADS - 2))
    async with _reads:
        return await on_db_thread(fn, *args)


def encode(event: dict) -> str:
    return encode_raw(event["type"], event.get("sequence"), json.dumps(event, separators=(",", ":")))


def encode_raw(event_type: str, sequence: int | None, data_json: str) -> str:
    """One SSE message; `data_json` is the Event JSON as published (one line: json.dumps escapes newlines)."""
    head = f"event: {event_type}\n" + (f"id: {sequence}\n" if sequence is not None else "")
    return f"{head}data: {data_json}\n\n"


def parse_cursor(value: str | None) -> int | None:
    """Accepts `7` and django-eventstream's `session-<id>:7`; None when absent or not a cursor."""
    if not value:
        return None
    value = value.strip().rsplit(":", 1)[-1]
    try:
        cursor = int(value)
    except ValueError:
        return None
    return cursor if cursor >= 0 else None


def accept(cursor: int, items: Iterable[LiveItem], back_to_log: bool) -> tuple[list[Item], int, bool]:
    """Match queued live items against the cursor: the items to send, the new cursor, and whether
    the stream must go back to the log.

    A live-only item (no id: `message.delta`) always passes and never moves the cursor. A stored
    item at or below the cursor is a duplicate and is dropped; the next one (cursor + 1) is sent and
    advances the cursor; anything beyond it is a gap: nothing stored is sent after it (the log
    re-read sends it all, in order)."""
    out = []
    for item in items:
        if item.id is None:
            out.append((item.type, None, item.data))
        elif back_to_log or item.id <= cursor:
            continue
        elif item.id == cursor + 1:
            out.append((item.type, item.id, item.data))
            cursor = item.id
        else:
            back_to_log = True
    return out, cursor, back_to_log


async def event_stream(session_id, after: int):
    """Our SSE: every event after `after`, then live, each as one SSE message."""
    async for items in log_items(session_id, after):
        if items is KEEPALIVE:
            yield ": keep-alive\n\n"
        else:
            yield "".join(encode_raw(*item) for item in items) if items else ": stream open\n\n"


async def log_items(session_id, after: int):
    """Lists of the items after `after` in sequence order, each stored one once, live-only ones as they come;
    KEEPALIVE when nothing came for SSE_KEEPALIVE_SECONDS. First an empty list, once the listener is
    registered (live-only events published from then on reach this stream). Endless: the caller stops."""
    read = functools.partial(_read, read_stream_batch)
    channel = channel_for(session_id)
    listener = Listener()
    listener.channels = {channel}
    listener.user_id = "anonymous"
    listener.assign_loop()
    manager = get_listener_manager()
    manager.add_listener(listener)
    cursor = after
    keepalive = settings.SSE_KEEPALIVE_SECONDS
    poll = settings.SSE_POLL_SECONDS
    try:
        yield []
        while True:
            # Catch up from the log.
            while True:
                items, cursor, more = await read(session_id, cursor)
                if items:
                    yield items
                if not more:
                    break
            # Then live, until a gap, an overflow or the poll interval sends us back to the log.
            last_poll = last_write = time.monotonic()
            back_to_log = False
            while not back_to_log:
                timeout = max(0.05, min(last_write + keepalive, last_poll + poll) - time.monotonic())
                try:
                    await asyncio.wait_for(listener.aevent.wait(), timeout)
                except TimeoutError:
                    now = time.monotonic()
                    if now - last_write >= keepalive:
                        yield KEEPALIVE
                        last_write = now
                    if now - last_poll >= poll:
                        back_to_log = True
                    continue
                with manager.lock:
                    items = listener.channel_items.pop(channel, [])
                    listener.channel_items = {}
                    overflow, listener.overflow = listener.overflow, False
                    listener.aevent.clear()
                out, cursor, back_to_log = accept(cursor, items, back_to_log)
                if out:
                    yield out
                    last_write = time.monotonic()
                back_to_log = back_to_log or overflow
    finally:
        manager.remove_listener(listener)
