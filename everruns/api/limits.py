"""Limits per caller: writes per minute (counted in Redis, so every web process shares the count) and
open event streams (counted per process)."""

import logging
import threading
import time

import redis
from django.conf import settings

logger = logging.getLogger(__name__)
_redis: redis.Redis | None = None
_local_counts: dict[tuple[str, int], int] = {}
_lock = threading.Lock()


def _client() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    return _redis


def write_allowed(key_id: str) -> tuple[bool, int]:
    """(allowed, seconds until the window ends). A fixed one-minute window of WRITE_RATE_LIMIT writes.
    Redis down: allowed (a limit is not worth an outage; the log says so)."""
    limit = settings.WRITE_RATE_LIMIT
    if limit <= 0:
        return True, 0
    now = time.time()
    window = int(now // 60)
    retry_after = max(1, int(60 - now % 60) + 1)
    if not settings.REDIS_URL:
        with _lock:
            for stale in [k for k in _local_counts if k[1] < window]:
                del _local_counts[stale]
            count = _local_counts[(key_id, window)] = _local_counts.get((key_id, window), 0) + 1
        return count <= limit, retry_after
    name = f"everruns:writes:{key_id}:{window}"
    try:
        pipe = _client().pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, 120)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("rate limit not checked, Redis unavailable: %s", exc)
        return True, 0
    return count <= limit, retry_after


class StreamSlots:
    """Open event streams of this process, in all and per caller."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total = 0
        self.by_key: dict[str, int] = {}

    def take(self, key_id: str) -> bool:
        with self.lock:
            if self.total >= settings.MAX_STREAMS_PER_PROCESS:
                return False
            if self.by_key.get(key_id, 0) >= settings.MAX_STREAMS_PER_KEY:
                return False
            self.total += 1
            self.by_key[key_id] = self.by_key.get(key_id, 0) + 1
            return True

    def give_back(self, key_id: str) -> None:
        with self.lock:
            self.total -= 1
            left = self.by_key.get(key_id, 1) - 1
            if left:
                self.by_key[key_id] = left
            else:
                self.by_key.pop(key_id, None)


stream_slots = StreamSlots()
