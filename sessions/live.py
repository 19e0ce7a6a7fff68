"""Live delivery of session events through django-eventstream's listeners.

Stored events carry their sequence as the pub id; `message.delta` carries none (live only).
With EVENTSTREAM_REDIS set (production), the payload goes over Redis pub/sub to every web process;
without it (embedded quick start), straight to this process's listeners.
"""

import asyncio
import json
import logging

from django_eventstream import eventstream as es_eventstream
from django_eventstream import views as es_views
from django_eventstream.event import Event as EsEvent

logger = logging.getLogger(__name__)

# The stream drains its queue as fast as the loop runs; token deltas arrive in bursts.
es_views.MAX_PENDING = 1000

RECONNECT_SECONDS = 1.0


async def _listen_forever(manager) -> None:
    """django-eventstream's Redis listener dies with its connection (a Redis restart) and is never
    started again; this one reconnects with a fresh client. Stored events missed meanwhile reach
    streams through their periodic re-read of the log; deltas (live only) are gone."""
    while True:
        listener = es_views.RedisListener()
        manager.redis_listener = listener
        try:
            await listener.listen()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("Redis listener lost its connection (%s); reconnecting", exc)
        finally:
            try:
                await listener.redis_client.aclose()
            except Exception:
                pass
        await asyncio.sleep(RECONNECT_SECONDS)


async def _start_redis_listener(self) -> None:
    await _listen_forever(self)


es_views.ListenerManager.start_redis_listener = _start_redis_listener


def channel_for(session_id) -> str:
    return f"session-{session_id}"


def publish(session_id, event: dict) -> None:
    """Publish one event; a failure is logged, never raised: the log is the truth, streams catch up."""
    channel = channel_for(session_id)
    pub_id = event.get("sequence")
    data = json.dumps(event, separators=(",", ":"))
    try:
        if es_eventstream.redis_client is not None:
            message = {"channel": channel, "event_type": event["type"], "data": data, "pub_id": pub_id}
            es_eventstream.redis_client.publish("events_channel", json.dumps(message))
        else:
            es_views.get_listener_manager().add_to_queues(channel, EsEvent(channel, event["type"], data, id=pub_id))
    except Exception as exc:  # Redis restarting: streams re-read the log on their next poll
        logger.warning("live publish failed for session %s: %s", session_id, exc)


def publish_delta(session_id, *, turn_id, message_id, delta: str) -> None:
    publish(
        session_id,
        {
            "type": "message.delta",
            "session_id": str(session_id),
            "turn_id": str(turn_id) if turn_id else None,
            "sequence": None,
            "data": {"message_id": str(message_id), "delta": delta},
        },
    )
