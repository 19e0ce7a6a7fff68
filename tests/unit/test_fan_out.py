"""The Redis fan-out message and the channel read from its raw bytes, which lets a web process skip decoding the
events of sessions it has no stream for (sessions/streams/live.py)."""

import json
import uuid

from sessions.streams.live import channel_for, channel_of, fan_out_message


def test_the_channel_is_read_from_the_message_as_published():
    session_id = uuid.uuid4()
    event = {"type": "session.status", "sequence": 3, "data": {"text": 'a "quoted" \\\\ value'}}
    raw = fan_out_message(session_id, event).encode()
    assert channel_of(raw) == channel_for(session_id)
    decoded = json.loads(raw)
    assert json.loads(decoded["data"]) == event and decoded["pub_id"] == 3


def test_any_other_shape_has_no_channel_and_is_decoded_as_before():
    assert channel_of(b'{"channel": "session-1", "data": "{}"}') is None  # not compact
    assert channel_of(b'{"event_type":"x","channel":"session-1"}') is None  # channel not first
    assert channel_of(b'{"channel":"a\\\\"b","data":"{}"}') is None  # an escaped quote in the name
    assert channel_of(b'{"channel":"unterminated') is None
