"""Counters shared by every process: increments are buffered here (a dict update on the hot path) and
flushed to Redis about once a second in one round trip (HINCRBY / HINCRBYFLOAT per label set), so
`/metrics` on any web process sums what every web process and worker counted, on any machine.

Without REDIS_URL (the embedded quick start: one process) the flush goes to a dict in this process.
Gauges that are per process (open event streams) are written with a TTL and summed: a process that
died stops counting once its value expires.
"""

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
GAUGE_TTL_SECONDS = 10
# everruns_llm_call_duration_seconds: an LLM call takes from a fraction of a second to minutes.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_lock = threading.Lock()
_pending: dict[tuple[str, tuple], float] = {}
_local_store: dict[tuple[str, tuple], float] = {}  # the flush target without Redis
_gauges: dict[str, Callable[[], float]] = {}
_after_flush: list[Callable[[], None]] = []  # work the flusher thread also does (building traces)
_thread: threading.Thread | None = None
_redis: redis.Redis | None = None
PROCESS = f"{socket.gethostname()}:{os.getpid()}"


def add(name: str, labels: tuple = (), amount: float = 1) -> None:
    """Count `amount` more for `name` with `labels` (a tuple of (label, value) pairs, in a fixed order)."""
    key = (name, labels)
    with _lock:
        _pending[key] = _pending.get(key, 0) + amount
    if _thread is None:
        start()


def observe(name: str, labels: tuple, value: float, buckets: tuple = DURATION_BUCKETS) -> None:
    """One observation of a histogram, kept as counters: one per bucket (not cumulative), a sum and a count."""
    bucket = next((str(b) for b in buckets if value <= b), "+Inf")
    key_bucket, key_sum, key_count = (
        (f"{name}_bucket", (*labels, ("le", bucket))),
        (f"{name}_sum", labels),
        (f"{name}_count", labels),
    )
    with _lock:
        _pending[key_bucket] = _pending.get(key_bucket, 0) + 1
        _pending[key_sum] = _pending.get(key_sum, 0.0) + float(value)
        _pending[key_count] = _pending.get(key_count, 0) + 1
    if _thread is None:
        start()


def gauge(name: str, read: Callable[[], float]) -> None:
    """A per-process gauge (read at each flush), summed over processes by `read_gauges`."""
    _gauges[name] = read
    start()


def after_flush(fn: Callable[[], None]) -> None:
    _after_flush.append(fn)
    start()


def start() -> None:
    global _thread
    with _lock:
        if _thread is not None:
            return
        _thread = threading.Thread(target=_run, name="telemetry-flush", daemon=True)
    _thread.start()


def _run() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        try:
            flush()
        except Exception:  # the flusher must outlive a Redis or database outage
            logger.warning("telemetry flush failed", exc_info=True)
        for fn in list(_after_flush):
            try:
                fn()
            except Exception:
                logger.warning("telemetry: %s failed", getattr(fn, "__name__", fn), exc_info=True)


def _key() -> str:
    return f"{settings.METRICS_KEY_PREFIX}:counters"


def _client() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    return _redis


def _field(name: str, labels: tuple) -> str:
    return json.dumps([name, [list(pair) for pair in labels]], separators=(",", ":"))


def flush() -> None:
    """Move the buffered increments (and this process's gauges) to the store: one Redis round trip."""
    with _lock:
        pending = dict(_pending)
        _pending.clear()
    gauges = {name: read() for name, read in _gauges.items()}
    if not settings.REDIS_URL:
        with _lock:
            for key, amount in pending.items():
                _local_store[key] = _local_store.get(key, 0) + amount
        return
    if not pending and not gauges:
        return
    pipe = _client().pipeline(transaction=False)
    for (name, labels), amount in pending.items():
        if isinstance(amount, float):
            pipe.hincrbyfloat(_key(), _field(name, labels), amount)
        else:
            pipe.hincrby(_key(), _field(name, labels), amount)
    for name, value in gauges.items():
        pipe.set(f"{settings.METRICS_KEY_PREFIX}:gauge:{name}:{PROCESS}", value, ex=GAUGE_TTL_SECONDS)
    try:
        pipe.execute()
    except redis.RedisError:
        with _lock:  # counted again at the next flush: an outage loses no count
            for key, amount in pending.items():
                _pending[key] = _pending.get(key, 0) + amount
        raise


def read() -> dict[tuple[str, tuple], float]:
    """Every counter of every process: {(name, labels): value}."""
    if not settings.REDIS_URL:
        with _lock:
            return dict(_local_store)
    values = {}
    for field, raw in _client().hgetall(_key()).items():
        name, labels = json.loads(field)
        values[(name, tuple(tuple(pair) for pair in labels))] = float(raw)
    return values


def read_gauge(name: str) -> float:
    """The sum of a per-process gauge over the processes that reported it within GAUGE_TTL_SECONDS."""
    if not settings.REDIS_URL:
        read_now = _gauges.get(name)
        return float(read_now()) if read_now else 0.0
    client = _client()
    keys = list(client.scan_iter(match=f"{settings.METRICS_KEY_PREFIX}:gauge:{name}:*", count=1000))
    return sum(float(v) for v in client.mget(keys) if v is not None) if keys else 0.0
