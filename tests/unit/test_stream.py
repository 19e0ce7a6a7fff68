"""The SSE stream's pure parts: the cursor a client sends, the frames, the exactly-once accept step, and the
outbox that bounds what a stream holds."""

import asyncio
import json
import uuid

import pytest
from django_eventstream.event import Event as LiveItem

from sessions.streams.stream import SEND_CHUNK, Outbox, accept, encode, encode_raw, parse_cursor, stream_memory

SESSION = uuid.UUID("01234567-89ab-7def-8123-456789abcdef")


def stored(sequence: int, event_type: str = "tool.started") -> LiveItem:
    data = json.dumps({"type": event_type, "sequence": sequence}, separators=(",", ":"))
    return LiveItem(f"session-{SESSION}", event_type, data, id=sequence)


def delta(text: str) -> LiveItem:
    data = json.dumps({"type": "message.delta", "sequence": None, "data": {"delta": text}}, separators=(",", ":"))
    return LiveItem(f"session-{SESSION}", "message.delta", data, id=None)


def frame(item: LiveItem) -> tuple:
    """What accept passes on for a live item: (type, sequence or None, Event JSON)."""
    return (item.type, item.id, item.data)


# --- parse_cursor ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cursor"),
    [
        ("7", 7),
        ("0", 0),
        ("1234567890123", 1234567890123),
        (f"session-{SESSION}:7", 7),
        (f"session-{SESSION}:0", 0),
        (" 7 ", 7),
        (f" session-{SESSION}:12\n", 12),
        ("a:b:9", 9),  # the number after the last colon
    ],
)
def test_a_cursor_is_a_sequence_alone_or_after_the_channel(raw, cursor):
    assert parse_cursor(raw) == cursor


@pytest.mark.parametrize(
    "raw",
    [None, "", "-1", f"session-{SESSION}:-3", "abc", "7a", "1.5", f"session-{SESSION}:", f"session-{SESSION}:x", ":"],
)
def test_a_negative_or_garbage_cursor_is_none(raw):
    assert parse_cursor(raw) is None


# --- frames ---------------------------------------------------------------------------------------


def test_a_stored_event_frame_has_its_sequence_as_id():
    assert encode_raw("llm.started", 3, '{"a":1}') == 'event: llm.started\nid: 3\ndata: {"a":1}\n\n'


def test_a_live_only_frame_has_no_id():
    assert encode_raw("message.delta", None, '{"d":"x"}') == 'event: message.delta\ndata: {"d":"x"}\n\n'


def test_encode_writes_the_event_as_compact_json_on_one_line():
    event = {"type": "message.user", "sequence": 4, "data": {"text": "two\nlines"}}
    assert encode(event) == (
        'event: message.user\nid: 4\ndata: {"type":"message.user","sequence":4,"data":{"text":"two\\nlines"}}\n\n'
    )


# --- accept: exactly once, in order ---------------------------------------------------------------


def test_the_next_sequence_is_sent_and_advances_the_cursor():
    item = stored(8)
    assert accept(7, [item], False) == ([frame(item)], 8, False)


def test_consecutive_sequences_are_all_sent_in_order():
    items = [stored(8), stored(9), stored(10)]
    assert accept(7, items, False) == ([frame(i) for i in items], 10, False)


def test_a_duplicate_at_the_cursor_is_dropped():
    assert accept(7, [stored(7)], False) == ([], 7, False)


def test_a_duplicate_below_the_cursor_is_dropped():
    assert accept(7, [stored(1), stored(6)], False) == ([], 7, False)


def test_duplicates_around_the_next_sequence_are_dropped_and_it_is_sent():
    items = [stored(6), stored(7), stored(8), stored(8), stored(7)]
    assert accept(7, items, False) == ([frame(items[2])], 8, False)


def test_a_gap_sends_the_stream_back_to_the_log_and_sends_nothing_stored():
    assert accept(7, [stored(9)], False) == ([], 7, True)


def test_nothing_stored_after_a_gap_is_sent_not_even_the_missing_sequence():
    # 9 arrives before 8: 8 would fit the cursor, but 9 is already behind it; the log re-read sends both.
    assert accept(7, [stored(9), stored(8), stored(10)], False) == ([], 7, True)


def test_items_before_a_gap_are_sent_and_items_after_it_are_not():
    items = [stored(8), stored(10), stored(9)]
    assert accept(7, items, False) == ([frame(items[0])], 8, True)


def test_a_live_only_item_passes_through_and_keeps_the_cursor():
    item = delta("Hel")
    assert accept(7, [item], False) == ([frame(item)], 7, False)
    assert "id:" not in encode_raw(*frame(item))


def test_live_only_items_keep_their_place_among_stored_ones():
    items = [delta("a"), stored(8), delta("b"), stored(9)]
    assert accept(7, items, False) == ([frame(i) for i in items], 9, False)


def test_a_live_only_item_passes_through_even_after_a_gap():
    items = [stored(9), delta("a"), stored(8)]
    assert accept(7, items, False) == ([frame(items[1])], 7, True)


def test_when_already_going_back_to_the_log_only_live_only_items_pass():
    items = [stored(8), delta("a"), stored(9)]
    assert accept(7, items, True) == ([frame(items[1])], 7, True)


def test_no_items_change_nothing():
    assert accept(7, [], False) == ([], 7, False)
    assert accept(7, [], True) == ([], 7, True)


def test_from_cursor_zero_the_first_event_is_sequence_one():
    first = stored(1)
    assert accept(0, [first], False) == ([frame(first)], 1, False)
    assert accept(0, [stored(2)], False) == ([], 0, True)


# --- the outbox: what a stream holds of its body until the server takes it ------------------------------------------
class Transport:
    """An ASGI `send` that takes `room` messages and then waits (a reader that stopped reading)."""

    def __init__(self, room: int):
        self.room = room
        self.messages: list[dict] = []
        self.stalled = asyncio.Event()

    async def send(self, message: dict) -> None:
        if len(self.messages) >= self.room:
            self.stalled.set()
            await asyncio.Event().wait()
        self.messages.append(message)


def test_a_body_goes_out_in_pieces_and_the_last_one_says_so():
    transport = Transport(room=100)
    text = "x" * (2 * SEND_CHUNK + 10)

    async def run():
        with Outbox(transport.send) as outbox:
            await outbox.write(text, last=True)
            assert stream_memory.held_bytes == 0

    asyncio.run(run())
    assert [len(m["body"]) for m in transport.messages] == [SEND_CHUNK, SEND_CHUNK, 10]
    assert [m["more_body"] for m in transport.messages] == [True, True, False]
    assert b"".join(m["body"] for m in transport.messages).decode() == text


def test_an_empty_last_write_still_ends_the_body():
    transport = Transport(room=1)
    asyncio.run(_write_all(transport, "", last=True))
    assert transport.messages == [{"type": "http.response.body", "body": b"", "more_body": False}]


async def _write_all(transport: Transport, text: str, last: bool = False) -> None:
    with Outbox(transport.send) as outbox:
        await outbox.write(text, last=last)


def test_a_stalled_reader_leaves_the_unsent_rest_counted_and_closing_gives_it_back():
    transport = Transport(room=1)
    text = "y" * (3 * SEND_CHUNK)
    before = stream_memory.snapshot()

    async def run():
        task = asyncio.ensure_future(_write_all(transport, text))
        await transport.stalled.wait()
        held = stream_memory.snapshot()
        task.cancel()  # the client went away
        await asyncio.gather(task, return_exceptions=True)
        return held

    held = asyncio.run(run())
    assert held["open"] == before["open"] + 1
    assert held["held_bytes"] == before["held_bytes"] + 2 * SEND_CHUNK  # one piece went, two wait
    assert stream_memory.snapshot()["open"] == before["open"]
    assert stream_memory.snapshot()["held_bytes"] == before["held_bytes"]
