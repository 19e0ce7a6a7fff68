"""Large items (a message may be 4 MiB): a list page stops at MAX_PAGE_BYTES and an SSE replay batch at
SSE_STREAM_BUFFER_BYTES, and a client still gets every item by paging on with `offset + len(items)`, or by reading
the stream on."""

import asyncio
import json

import pytest

from sessions.log import append_message
from sessions.models import Event, Message
from sessions.streams.stream import event_stream
from tests.factories import make_session

MIB = 1024 * 1024
ITEMS = 7


@pytest.fixture
def big_session():
    """A session of ITEMS user messages of ~1 MiB each (and as many `message.user` events carrying them)."""
    session = make_session()
    for i in range(ITEMS):
        append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": f"{i}" * MIB}])
    return session


def read_all(api, url: str, max_bytes: int) -> list[dict]:
    items, offset, total = [], 0, None
    while total is None or offset < total:
        response = api.get(url, {"limit": 500, "offset": offset})
        body = response.json()
        assert body["limit"] == 500 and body["offset"] == offset
        total = body["total"]
        page = body["items"]
        assert page, "a page always holds at least one item"
        assert len(page) == 1 or len(json.dumps(page, separators=(",", ":"))) <= max_bytes
        items.extend(page)
        offset += len(page)
    return items


@pytest.mark.parametrize("resource", ["messages", "events"])
def test_a_page_of_large_items_stops_at_max_page_bytes_and_paging_continues(api, settings, big_session, resource):
    settings.MAX_PAGE_BYTES = 5 * MIB
    url = f"/v1/agents/{big_session.agent_id}/sessions/{big_session.pk}/{resource}"
    first = api.get(url, {"limit": 500})
    body = first.json()
    # The array is sent twice (`items` and `data`): a third ~1 MiB item would make the page pass 5 MiB.
    assert len(body["items"]) == 2 and body["data"] == body["items"] and body["total"] >= ITEMS
    assert len(first.content) < 5 * MIB
    model = Message if resource == "messages" else Event
    expected = [
        str(pk) for pk in model.objects.filter(session=big_session).order_by("sequence").values_list("id", flat=True)
    ]
    assert [item["id"] for item in read_all(api, url, 5 * MIB)] == expected


def test_an_item_larger_than_the_budget_still_comes_one_per_page(api, settings, big_session):
    settings.MAX_PAGE_BYTES = 1000
    url = f"/v1/agents/{big_session.agent_id}/sessions/{big_session.pk}/messages"
    body = api.get(url).json()
    assert len(body["items"]) == 1 and body["total"] == ITEMS
    assert len(read_all(api, url, 1000)) == ITEMS


def test_small_items_fill_the_page_up_to_the_limit(api, settings):
    settings.MAX_PAGE_BYTES = 3 * MIB
    session = make_session()
    for i in range(30):
        append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": f"short {i}"}])
    body = api.get(f"/v1/agents/{session.agent_id}/sessions/{session.pk}/messages", {"limit": 25}).json()
    assert len(body["items"]) == 25 and body["total"] == 30


async def replay(session_id, expected: int) -> list[str]:
    """The chunks the SSE stream sends until `expected` stored events have arrived."""
    chunks, seen = [], 0
    stream = event_stream(session_id, 0)
    try:
        async with asyncio.timeout(60):
            async for chunk in stream:
                chunks.append(chunk)
                seen += chunk.count("\nid: ")
                if seen >= expected:
                    return chunks
    finally:
        await stream.aclose()
    raise AssertionError("the stream ended early")


def test_the_sse_replay_sends_large_events_in_batches_of_at_most_the_stream_buffer(settings, transactional_db):
    settings.SSE_STREAM_BUFFER_BYTES = 3 * MIB
    session = make_session()
    for i in range(ITEMS):
        append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": f"{i}" * MIB}])
    events = list(Event.objects.filter(session=session).order_by("sequence").values_list("sequence", flat=True))
    chunks = asyncio.run(replay(session.pk, len(events)))
    batches = chunks[1:]  # after ": stream open"
    assert len(batches) > 2
    assert all(len(batch) <= 3 * MIB or batch.count("\nid: ") == 1 for batch in batches)
    sent = [
        int(line.removeprefix("id: ")) for batch in batches for line in batch.split("\n") if line.startswith("id: ")
    ]
    assert sent == events
