"""The web process subscribes to Redis when it starts (the ASGI lifespan), not when its first stream opens."""

import asyncio

from django_eventstream import views as es_views

from sessions.streams.sse import StreamRouter


class Manager(es_views.ListenerManager):
    """django-eventstream's manager with a Redis listener that only records that it was started."""

    def __init__(self):
        super().__init__()
        self.redis_listener = object()
        self.starts = 0

    async def start_redis_listener(self):
        self.starts += 1


async def _lifespan(app) -> list[dict]:
    sent, inbox = [], asyncio.Queue()
    for message in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}):
        inbox.put_nowait(message)

    async def send(message):
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    await asyncio.sleep(0)  # the listener's task runs
    return sent


async def _django_app(scope, receive, send):
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


def test_the_redis_listener_starts_with_the_process_once(monkeypatch):
    manager = Manager()
    monkeypatch.setattr(es_views, "listener_manager", manager)

    async def scenario():
        sent = await _lifespan(StreamRouter(_django_app))
        started = manager.starts
        manager.add_listener(es_views.Listener())  # a stream opening later does not start a second one
        await asyncio.sleep(0)
        return sent, started

    sent, started_before_any_stream = asyncio.run(scenario())
    assert started_before_any_stream == 1 and manager.starts == 1
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_without_redis_nothing_is_started(monkeypatch):
    manager = Manager()
    manager.redis_listener = None
    monkeypatch.setattr(es_views, "listener_manager", manager)
    asyncio.run(_lifespan(StreamRouter(_django_app)))
    assert manager.starts == 0 and not manager.redis_listener_started
