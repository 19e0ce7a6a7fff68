"""Wake-ups that can wait until a web request's response is sent: the Redis messages its committed writes make (the
events for live streams, a queued turn's task, webhook sends).

PostgreSQL is the truth and these only wake readers and workers early: a lost one is found by the next read or by
the sweeper, so the response need not wait for them. The bridge (everruns/front/bridge.py) holds them while the
request runs, hands the response to the event loop, then runs them in the order they came, on the same thread,
while the loop writes the response. Anywhere else (a worker, a management command, Django's test client) `later`
runs them at once."""

import functools
import logging
import threading

from django.db import transaction

logger = logging.getLogger(__name__)
_held = threading.local()


def later(fn) -> None:
    """Run `fn()` once the response is on its way, or now when no request holds wake-ups on this thread."""
    queue = getattr(_held, "queue", None)
    if queue is None:
        fn()
    else:
        queue.append(fn)


def after_commit(fn, *args) -> None:
    """`fn(*args)` once the current transaction commits, as a wake-up (`later`)."""
    transaction.on_commit(lambda: later(functools.partial(fn, *args)))


def hold() -> list:
    """From now on this thread's wake-ups wait in the list returned, until `release`."""
    _held.queue = []
    return _held.queue


def release(queue: list) -> None:
    """Stop holding, and run what was held, in order. A failing one is logged and the rest still run."""
    _held.queue = None
    for fn in queue:
        try:
            fn()
        except Exception:
            logger.exception("a wake-up after the response failed")
