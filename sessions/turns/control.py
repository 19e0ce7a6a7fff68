"""Wake-ups for running turns: cancel and interrupt reach the worker that holds a turn at once.

The request itself is stored on the turn (sessions.turns) before a signal is sent, so a lost signal
costs only time: every worker's heartbeat reads the stored requests of its turns too. With Redis
(production) signals go over pub/sub to every worker process; without it (embedded quick start) to
the handlers of this process.
"""

import json
import logging

from django.conf import settings
from redis import Redis

from sessions.streams import live

logger = logging.getLogger(__name__)

CHANNEL = "everruns:turn-control"

_local_handlers: list = []
_client: Redis | None = None


def _redis_options() -> dict | None:
    return getattr(settings, "EVENTSTREAM_REDIS", None) or None


def send(turn_id, signal: str, sequence: int = 0) -> None:
    """Tell whichever worker holds `turn_id` to act on `signal` ("cancel" or "interrupt"). Never raises:
    the request is stored, the heartbeat finds it if this wake-up is lost."""
    global _client
    message = {"turn_id": str(turn_id), "signal": signal, "sequence": sequence}
    options = _redis_options()
    try:
        if options is None:
            for handler in list(_local_handlers):
                handler(message)
            return
        if _client is None:
            _client = Redis(**options, socket_connect_timeout=1, socket_timeout=1)
        _client.publish(CHANNEL, json.dumps(message))
    except Exception as exc:
        logger.warning("could not signal turn %s (%s): %s", turn_id, signal, exc)


async def listen(handler) -> None:
    """Call `handler(message)` for every signal, forever; reconnects after a Redis restart. Without Redis,
    registers `handler` for this process's own signals."""
    if _redis_options() is None:
        _local_handlers.append(handler)
        return
    await live.subscribe_forever(CHANNEL, handler)
