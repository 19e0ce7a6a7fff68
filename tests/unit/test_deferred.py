"""everruns/core/deferred.py and the bridge: a request's wake-ups run after its response is handed to the loop."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from everruns.core import deferred
from everruns.front.bridge import DjangoBridge

SCOPE = {"type": "http", "method": "POST", "path": "/x", "headers": [], "query_string": b""}


@pytest.fixture(autouse=True)
def _not_held():
    yield
    deferred.release([])


def test_outside_a_request_a_wake_up_runs_at_once():
    ran = []
    deferred.later(lambda: ran.append(1))
    assert ran == [1]


def test_held_wake_ups_run_in_order_on_release_and_a_failing_one_does_not_stop_the_rest():
    ran = []
    held = deferred.hold()
    deferred.later(lambda: ran.append("a"))
    deferred.later(lambda: 1 / 0)
    deferred.later(lambda: ran.append("b"))
    assert ran == []
    deferred.release(held)
    assert ran == ["a", "b"]
    deferred.later(lambda: ran.append("c"))  # no longer held
    assert ran == ["a", "b", "c"]


class _Bridge(DjangoBridge):
    """Django's answer replaced by a fixed one, whose request made the wake-up given."""

    def __init__(self, wake_up):
        self.pool = ThreadPoolExecutor(1)
        self.wake_up = wake_up

    def _response(self, environ):
        deferred.later(self.wake_up)
        return 201, [(b"content-type", b"application/json")], b"{}"


def test_the_response_is_sent_before_the_wake_ups_run_to_their_end():
    answered, woke, sent = threading.Event(), [], []

    def wake_up():  # it ends only once the client has the body: a bridge that waited for it would hang
        assert answered.wait(5), "the response waited for the wake-up"
        woke.append(True)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body":
            answered.set()

    asyncio.run(asyncio.wait_for(_Bridge(wake_up)(dict(SCOPE), receive, send), 10))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 201
    assert woke == [True]  # and the bridge returned only after the wake-up ran
