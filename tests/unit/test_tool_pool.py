"""The worker's tool pool: bounded threads whose stuck calls are counted and shed, never queued behind."""

import threading
import time

import pytest

from runner.toolexec import ToolPool, ToolPoolFull


@pytest.fixture
def release():
    """Set at the end of each test: the blocked calls return, their threads end."""
    event = threading.Event()
    yield event
    event.set()


def stuck_call(pool: ToolPool, release: threading.Event):
    """A call that blocks until released, abandoned once it runs (as run_calls does at its deadline)."""
    started = threading.Event()
    future = pool.submit(lambda: (started.set(), release.wait(30)))
    assert started.wait(5)
    assert future.cancel() is False  # running: it cannot be cancelled, only abandoned
    return future


def test_a_stuck_call_is_replaced_and_a_later_call_runs_at_once(release):
    pool = ToolPool(threads=1, stuck_max=3)
    for _ in range(3):
        stuck_call(pool, release)
    started = time.monotonic()
    assert pool.submit(lambda: 42).result(timeout=5) == 42
    assert time.monotonic() - started < 1
    assert pool.stats()["stuck"] == 3 and pool.stats()["threads"] <= 4


def test_a_call_fails_fast_once_every_thread_is_stuck(release):
    pool = ToolPool(threads=1, stuck_max=1)
    stuck_call(pool, release)
    stuck_call(pool, release)
    started = time.monotonic()
    with pytest.raises(ToolPoolFull, match="2 calls are stuck"):
        pool.submit(lambda: 42).result(timeout=5)
    assert time.monotonic() - started < 1


def test_a_stuck_call_that_ends_gives_its_place_back(release):
    pool = ToolPool(threads=1, stuck_max=1)
    first = stuck_call(pool, release)
    stuck_call(pool, release)
    release.set()
    first.result(timeout=5)
    deadline = time.monotonic() + 5
    while pool.stats()["stuck"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.stats()["stuck"] == 0
    assert pool.submit(lambda: 7).result(timeout=5) == 7
    assert pool.stats()["threads"] <= 1 + 1


def test_calls_beyond_the_free_threads_wait_and_one_cancelled_while_waiting_never_runs(release):
    pool = ToolPool(threads=1, stuck_max=0)
    started = threading.Event()
    busy = pool.submit(lambda: (started.set(), release.wait(30)))
    assert started.wait(5)
    ran = []
    waiting = pool.submit(lambda: ran.append("cancelled one"))
    after = pool.submit(lambda: "after")
    assert waiting.cancel() is True
    release.set()
    assert busy.result(timeout=5) and after.result(timeout=5) == "after"
    assert ran == []


def test_the_pool_never_runs_more_threads_than_its_bound(release):
    pool = ToolPool(threads=2, stuck_max=2)
    for _ in range(4):
        stuck_call(pool, release)
    with pytest.raises(ToolPoolFull):
        pool.submit(lambda: None).result(timeout=5)
    assert pool.stats()["threads"] == 4
