"""The SSE stream generator in this process: history from the real log, live items through
django-eventstream's real listener manager. Live items are handed to the listener the way its Redis
listener hands them over (`add_to_queues`), so the races the stream must survive (a late or repeated
wake-up, a lost one) are played exactly instead of being waited for."""

import asyncio
import json
import re
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django_eventstream.event import Event as EsEvent
from django_eventstream.views import get_listener_manager
from rest_framework.test import APIClient

from everruns.api.pagination import FETCH_ROWS
from sessions.log import append_event, event_to_dict
from sessions.streams.live import channel_for
from sessions.streams.stream import BATCH, event_stream, parse_cursor, read_events_after
from sessions.streams.stream import _read as stream_read
from tests.factories import make_session

pytestmark = pytest.mark.usefixtures("seeded_tx")


@pytest.fixture(autouse=True)
def only_our_deliveries(monkeypatch):
    """No Redis listener in this process: live items reach the stream only through `deliver`, so
    each test plays exactly the order of wake-ups it names (the log is still written for real)."""
    monkeypatch.setattr(get_listener_manager(), "redis_listener", None)


CHUNK_TIMEOUT = 5.0  # below SSE_POLL_SECONDS (5 s) plus the read: a chunk that comes is a live one


def stored(session, n: int) -> list[dict]:
    return [event_to_dict(append_event(session_id=session.pk, type="session.status", data={"n": i})) for i in range(n)]


def ids_in(chunk: str) -> list[int]:
    return [int(i) for i in re.findall(r"^id: (\d+)$", chunk, re.M)]


def deliver(session, event: dict | None = None, *, sequence: int | None = None, type: str = "session.status"):
    """One live item, as the Redis listener delivers it: the published JSON with its sequence as the id."""
    payload = event or {"type": type, "sequence": sequence, "data": {}}
    channel = channel_for(session.pk)
    item = EsEvent(channel, payload["type"], json.dumps(payload, separators=(",", ":")), id=payload["sequence"])
    get_listener_manager().add_to_queues(channel, item)


class Reader:
    def __init__(self, session, after: int = 0):
        self.stream = event_stream(session.pk, after)

    async def next(self, timeout: float = CHUNK_TIMEOUT) -> str:
        return await asyncio.wait_for(anext(self.stream), timeout)

    async def until_id(self, sequence: int) -> list[int]:
        """Every id sent until `sequence` (keep-alives and deltas skipped)."""
        seen = []
        while sequence not in seen:
            seen += ids_in(await self.next())
        return seen


def run(scenario):
    try:
        return asyncio.run(scenario())
    finally:
        connection.close()


async def append(session, n: int) -> list[dict]:
    def write():
        try:
            return stored(session, n)
        finally:
            connection.close()

    return await sync_to_async(write, thread_sensitive=False)()


def test_history_then_live_events_each_exactly_once():
    session = make_session()
    history = stored(session, 3)

    async def scenario():
        reader = Reader(session)
        assert await reader.next() == ": stream open\n\n"
        assert ids_in(await reader.next()) == [1, 2, 3]
        # A late wake-up repeats what the first read of the log already sent, then the next event
        # is delivered twice: each goes out once.
        for event in history:
            deliver(session, event)
        (new,) = await append(session, 1)
        deliver(session, new)
        deliver(session, new)
        sent = await reader.until_id(4)
        (last,) = await append(session, 1)
        deliver(session, last)
        sent += await reader.until_id(5)
        await reader.stream.aclose()
        return sent

    assert run(scenario) == [4, 5]


def test_in_order_live_events_go_out_as_they_came_without_a_read_of_the_log(settings):
    """The live path trusts an in-order item: with many open streams, a read of the log per event
    per stream is what it exists to avoid. Items 2 and 3 are not in the log, so only the live path
    can send them."""
    settings.SSE_POLL_SECONDS = 60
    session = make_session()
    (first,) = stored(session, 1)
    live = [{**first, "sequence": n, "id": f"live-{n}", "data": {"n": n}} for n in (2, 3)]

    async def scenario():
        reader = Reader(session)
        await reader.next()
        await reader.next()
        for event in live:
            deliver(session, event)
        chunk = await reader.next()
        await reader.stream.aclose()
        return chunk

    assert run(scenario) == "".join(
        f"event: session.status\nid: {e['sequence']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n" for e in live
    )


def test_a_gap_in_live_events_sends_the_stream_back_to_the_log():
    session = make_session()
    stored(session, 2)

    async def scenario():
        reader = Reader(session)
        await reader.next()
        assert ids_in(await reader.next()) == [1, 2]
        events = await append(session, 2)
        deliver(session, events[1])  # the wake-up of sequence 3 was lost; 4 arrives alone
        sent = await reader.until_id(4)
        await reader.stream.aclose()
        return sent

    assert run(scenario) == [3, 4]


def test_a_cursor_skips_what_the_client_already_has():
    session = make_session()
    stored(session, 5)

    async def scenario():
        reader = Reader(session, after=3)
        await reader.next()
        chunk = await reader.next()
        await reader.stream.aclose()
        return chunk

    chunk = run(scenario)
    assert ids_in(chunk) == [4, 5]
    assert [json.loads(line[6:])["sequence"] for line in chunk.splitlines() if line.startswith("data: ")] == [4, 5]


def test_message_delta_is_sent_live_without_an_id_and_does_not_move_the_cursor():
    session = make_session()
    stored(session, 1)

    async def scenario():
        reader = Reader(session)
        await reader.next()
        await reader.next()
        deliver(session, {"type": "message.delta", "sequence": None, "data": {"delta": "Hel"}})
        delta = await reader.next()
        (event,) = await append(session, 1)
        deliver(session, event)
        sent = await reader.until_id(2)
        await reader.stream.aclose()
        return delta, sent

    delta, sent = run(scenario)
    assert delta.startswith("event: message.delta\ndata: {") and "\nid:" not in delta
    assert sent == [2]


def test_history_is_read_in_batches_and_sent_whole_before_going_live(settings):
    settings.SSE_POLL_SECONDS = 60  # nothing may wait for a poll: the rest of the history comes at once
    session = make_session()
    with transaction.atomic():
        stored(session, BATCH + 1)

    async def scenario():
        reader = Reader(session)
        await reader.next()
        return ids_in(await reader.next()), ids_in(await reader.next())

    first, second = run(scenario)
    assert first == list(range(1, BATCH + 1)) and second == [BATCH + 1]


def test_the_wire_format_of_a_chunk_of_events():
    session = make_session()
    events = stored(session, 2)

    async def scenario():
        reader = Reader(session)
        await reader.next()
        chunk = await reader.next()
        await reader.stream.aclose()
        return chunk

    assert run(scenario) == "".join(
        f"event: session.status\nid: {e['sequence']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events
    )


def test_an_idle_stream_sends_a_keep_alive_comment_every_interval(settings):
    settings.SSE_KEEPALIVE_SECONDS = 0.3
    settings.SSE_POLL_SECONDS = 60
    session = make_session()

    async def scenario():
        reader = Reader(session)
        await reader.next()
        started = time.monotonic()
        chunks = [await reader.next(2) for _ in range(3)]
        elapsed = time.monotonic() - started
        await reader.stream.aclose()
        return chunks, elapsed

    chunks, elapsed = run(scenario)
    assert chunks == [": keep-alive\n\n"] * 3
    assert 0.85 <= elapsed < 2.0


def test_an_event_whose_wake_up_was_lost_arrives_with_the_next_poll_of_the_log(settings):
    settings.SSE_KEEPALIVE_SECONDS = 60  # so the only thing that can come is the polled event
    settings.SSE_POLL_SECONDS = 0.3
    session = make_session()
    stored(session, 1)

    async def scenario():
        reader = Reader(session)
        await reader.next()
        await reader.next()
        await append(session, 1)  # stored, never delivered live
        chunk = await reader.next(3)
        await reader.stream.aclose()
        return chunk

    assert ids_in(run(scenario)) == [2]


@pytest.mark.parametrize(
    "raw,cursor",
    [
        ("7", 7),
        (" 7 ", 7),
        ("session-0195f0a4-8c5b-7d2e-9c1a-2b3c4d5e6f70:7", 7),
        ("0", 0),
        ("", None),
        (None, None),
        ("-1", None),
        ("seven", None),
        ("session-x:", None),
    ],
)
def test_parse_cursor(raw, cursor):
    assert parse_cursor(raw) == cursor


def test_the_channel_colon_sequence_cursor_of_django_eventstream_is_accepted():
    api = APIClient()
    session = make_session()
    stored(session, 5)
    url = f"/v1/agents/{session.agent_id}/sessions/{session.pk}/events"
    header = api.get(url, HTTP_LAST_EVENT_ID=f"{channel_for(session.pk)}:3").json()
    assert [e["sequence"] for e in header["items"]] == [4, 5]
    query = api.get(f"{url}?lastEventId={channel_for(session.pk)}:4").json()
    assert [e["sequence"] for e in query["items"]] == [5]


def test_a_short_read_of_the_log_is_one_query_and_a_long_one_reads_on(django_assert_num_queries):
    session = make_session()
    stored(session, FETCH_ROWS + 3)
    with django_assert_num_queries(1):
        items, last, more = read_events_after(session.pk, 5)
    assert [i[1] for i in items] == list(range(6, FETCH_ROWS + 4)) and last == FETCH_ROWS + 3 and not more
    items, last, more = read_events_after(session.pk, 0)
    assert [i[1] for i in items] == list(range(1, FETCH_ROWS + 4)) and not more
    items, last, more = read_events_after(session.pk, 0, limit=FETCH_ROWS + 1)
    assert len(items) == FETCH_ROWS + 1 and last == FETCH_ROWS + 1 and more


def test_streams_reading_from_the_same_place_share_one_read_even_when_the_first_goes_away():
    calls = []

    def slow_read(session_id, after):
        calls.append((session_id, after))
        time.sleep(0.2)
        return [("x", after + 1, "{}")], after + 1, False

    async def scenario():
        first = asyncio.ensure_future(stream_read(slow_read, "s", 7))
        await asyncio.sleep(0.05)
        others = [asyncio.ensure_future(stream_read(slow_read, "s", 7)) for _ in range(3)]
        elsewhere = asyncio.ensure_future(stream_read(slow_read, "s", 9))
        first.cancel()  # the stream that started the read goes away: the others still get it
        return await asyncio.gather(*others), await elsewhere

    shared, elsewhere = asyncio.run(scenario())
    assert shared == [([("x", 8, "{}")], 8, False)] * 3 and elsewhere == ([("x", 10, "{}")], 10, False)
    assert sorted(calls) == [("s", 7), ("s", 9)]
