"""Live delivery of session events through django-eventstream's listeners.

Stored events carry their sequence as the pub id; `message.delta` carries none (live only).
With EVENTSTREAM_REDIS set (production), the payload goes over Redis pub/sub to every web process;
without it (embedded quick start), straight to this process's listeners.
"""

import asyncio
import json
import logging
import threading
from collections import OrderedDict

from django.conf import settings
from django_eventstream import eventstream as es_eventstream
from django_eventstream import views as es_views
from django_eventstream.event import Event as EsEvent
from redis.asyncio import Redis

logger = logging.getLogger(__name__)

# The stream drains its queue as fast as the loop runs; token deltas arrive in bursts.
es_views.MAX_PENDING = 1000

RECONNECT_SECONDS = 1.0


async def subscribe_forever(channel: str, on_message, on_subscribed=None, wanted=None) -> None:
    """Call `on_message(decoded JSON)` for every message on the Redis `channel`, forever (with `wanted`, only for
    the messages whose raw bytes it accepts). After a Redis restart it reconnects with a fresh client and calls
    `on_subscribed()` each time it is subscribed again."""
    while True:
        client = Redis(**settings.EVENTSTREAM_REDIS)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            if on_subscribed is not None:
                on_subscribed()
            async for message in pubsub.listen():
                if message["type"] == "message" and (wanted is None or wanted(message["data"])):
                    try:
                        on_message(json.loads(message["data"]))
                    except Exception:
                        logger.exception("handling a message of %s failed", channel)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("Redis listener of %s lost its connection (%s); reconnecting", channel, exc)
        finally:
            try:
                await client.aclose()
            except Exception:
                pass
        await asyncio.sleep(RECONNECT_SECONDS)


async def _listen_forever(manager) -> None:
    """Our Redis listener (django-eventstream's dies with its connection at a Redis restart and is
    never started again): it reconnects, and once subscribed it sends every open stream back to the log,
    which holds what was committed while no wake-up could arrive (deltas, being live only, are gone)."""

    def deliver(event: dict) -> None:
        manager.add_to_queues(
            event["channel"], EsEvent(event["channel"], event["event_type"], event["data"], id=event["pub_id"])
        )

    def wanted(raw: bytes) -> bool:
        # Every web process receives every session's events; most have no stream here. Decoding them (the
        # event's JSON inside the message's) was ~8 % of a web process's CPU under 1,000 turns with no stream.
        # The stream that registers a listener and this check both run on the event loop: no race.
        channel = channel_of(raw)
        return channel is None or channel in manager.listeners_by_channel

    await subscribe_forever("events_channel", deliver, on_subscribed=lambda: rewind_all(manager), wanted=wanted)


_CHANNEL_HEAD = b'{"channel":"'


def channel_of(raw: bytes) -> str | None:
    """The channel of a message as `publish_many` writes it (compact JSON, `channel` first); None for any other
    shape (it is then decoded and delivered as before)."""
    if not raw.startswith(_CHANNEL_HEAD):
        return None
    end = raw.find(b'"', len(_CHANNEL_HEAD))
    channel = raw[len(_CHANNEL_HEAD) : end]
    return channel.decode() if end > 0 and b"\\" not in channel else None


def listen_now() -> None:
    """Start this process's Redis listener now, at the web's start-up, not with the first stream (as
    django-eventstream would): a burst of streams opening while it subscribes would all be sent back to the
    log when it does (rewind_all), and their reads would queue behind the requests (1,000 streams: ~1 s)."""
    manager = es_views.get_listener_manager()
    if manager.redis_listener is None:
        return
    with manager.lock:
        if manager.redis_listener_started:
            return
        manager.redis_listener_started = True
    asyncio.get_running_loop().create_task(manager.start_redis_listener())


def rewind_all(manager) -> None:
    """Make every open stream of this process re-read the log before it goes on live."""
    with manager.lock:
        listeners = {listener for group in manager.listeners_by_channel.values() for listener in group}
        for listener in listeners:
            listener.overflow = True
    for listener in listeners:
        listener.wake_threadsafe()


async def _start_redis_listener(self) -> None:
    # django-eventstream starts this task without keeping a reference to it, and asyncio keeps only
    # weak ones: hold it, or the garbage collector may destroy the listener while it waits.
    self.listener_task = asyncio.current_task()
    await _listen_forever(self)


es_views.ListenerManager.start_redis_listener = _start_redis_listener


def channel_for(session_id) -> str:
    return f"session-{session_id}"


def publish(session_id, event: dict) -> None:
    """Publish one event; a failure is logged, never raised: the log is the truth, streams catch up."""
    publish_many([(session_id, event)])


def fan_out_message(session_id, event: dict) -> str:
    """The message on Redis for one event: django-eventstream's shape, compact, `channel` first (`channel_of`)."""
    message = {
        "channel": channel_for(session_id),
        "event_type": event["type"],
        "data": json.dumps(event, separators=(",", ":")),
        "pub_id": event.get("sequence"),
    }
    return json.dumps(message, separators=(",", ":"))


def publish_many(items: list[tuple]) -> None:
    """Publish (session_id, event) pairs in one Redis round trip, in order."""
    try:
        if es_eventstream.redis_client is not None:
            pipe = es_eventstream.redis_client.pipeline(transaction=False)
            for session_id, event in items:
                pipe.publish("events_channel", fan_out_message(session_id, event))
            pipe.execute()
        else:
            manager = es_views.get_listener_manager()
            for session_id, event in items:
                channel = channel_for(session_id)
                data = json.dumps(event, separators=(",", ":"))
                manager.add_to_queues(channel, EsEvent(channel, event["type"], data, id=event.get("sequence")))
    except Exception as exc:  # Redis restarting: streams re-read the log once it is back
        logger.warning("live publish failed for %d event(s): %s", len(items), exc)


# Characters published so far per streamed message, in this process: a delta carries its `offset`, so a
# reader can tell the first delta of a message from a later one and see a delta it missed (streams that
# build protocol messages from deltas, sessions/chat/run.py). A message streams from one process; the
# oldest entries give way (each LLM attempt streams under a message id of its own).
_offsets: OrderedDict[str, int] = OrderedDict()
_offsets_lock = threading.Lock()
OFFSETS_KEPT = 10_000


def publish_delta(session_id, *, turn_id, message_id, delta: str) -> None:
    key = str(message_id)
    with _offsets_lock:
        offset = _offsets.pop(key, 0)
        _offsets[key] = offset + len(delta)
        while len(_offsets) > OFFSETS_KEPT:
            _offsets.popitem(last=False)
    publish(
        session_id,
        {
            "type": "message.delta",
            "session_id": str(session_id),
            "turn_id": str(turn_id) if turn_id else None,
            "sequence": None,
            "data": {"message_id": key, "delta": delta, "offset": offset},
        },
    )
