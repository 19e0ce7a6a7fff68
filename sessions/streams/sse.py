"""Session event streams served straight from ASGI, in front of Django's handler.

Django's ASGI handler runs a request's sync middleware and views on a thread of its own and keeps
that thread for the whole response, so every open stream would pin one. Here an open stream is an
asyncio task and nothing else: no thread, and no database connection between its reads of the log.
The same route without `Accept: text/event-stream` (the JSON list) goes on to Django. `.../sse` (upstream
Everruns' name for the stream) is always the stream: the same one, with the same cursor, auth and limits.
"""

import asyncio
import contextlib
import uuid
from urllib.parse import parse_qs

from rest_framework.utils.mediatypes import media_type_matches, order_by_precedence

from everruns.api.auth import Denied
from everruns.api.errors import DATABASE_ERRORS, envelope
from everruns.api.limits import stream_slots
from everruns.front import routes
from everruns.front.access import caller
from everruns.front.answers import denied, send_json, unavailable
from everruns.front.bridge import ROUTE, on_db_thread
from sessions.models import Session
from sessions.streams import live
from sessions.streams.stream import Outbox, event_stream, parse_cursor

# `events` streams when the client asks for the stream; `sse` always does.
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def wants_stream(accept: str) -> bool:
    """Whether DRF's content negotiation would pick the stream over JSON for this route (its renderers
    are JSON first, then the stream): the most specific media ranges first, JSON on a tie."""
    accepts = [item.strip() for item in accept.split(",") if item.strip()] or ["*/*"]
    for media_types in order_by_precedence(accepts):
        if any(media_type_matches("application/json", m) for m in media_types):
            return False
        if any(media_type_matches("text/event-stream", m) for m in media_types):
            return True
    return False


def _session_exists(agent_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    return Session.objects.filter(pk=session_id, agent_id=agent_id).exists()


def _cursor(scope, headers: dict) -> int | None | bool:
    """The resume cursor: Last-Event-ID, ?lastEventId= or ?after= (0 without one); False when invalid."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    raw = headers.get(b"last-event-id", b"").decode("latin-1") or next(
        (query[name][0] for name in ("lastEventId", "after") if query.get(name)), ""
    )
    if raw == "":
        return 0
    cursor = parse_cursor(raw)
    return False if cursor is None else cursor


async def serve_stream(scope, receive, send, agent_id: str, session_id: str) -> None:
    headers = dict(scope.get("headers") or [])
    try:
        principal = await caller(scope)
    except Denied as refusal:
        return await denied(send, refusal)
    except DATABASE_ERRORS as exc:
        return await unavailable(send, exc)
    try:
        agent_uuid, session_uuid = uuid.UUID(agent_id), uuid.UUID(session_id)
    except ValueError:
        return await send_json(send, 404, envelope("not_found", "Not found"))
    slot = principal.key_id or "open"
    if not stream_slots.take(slot):
        message = "Too many open event streams (MAX_STREAMS_PER_KEY / MAX_STREAMS_PER_PROCESS)"
        return await send_json(send, 429, envelope("rate_limited", message), [(b"retry-after", b"5")])
    try:
        await _serve(scope, receive, send, headers, agent_uuid, session_uuid)
    finally:
        stream_slots.give_back(slot)


async def _serve(scope, receive, send, headers: dict, agent_uuid: uuid.UUID, session_uuid: uuid.UUID) -> None:
    after = _cursor(scope, headers)
    if after is False:
        details = {"after": ["Must be a non-negative event sequence."]}
        return await send_json(send, 400, envelope("validation_error", "Invalid cursor", details))
    try:
        exists = await on_db_thread(_session_exists, agent_uuid, session_uuid)
    except DATABASE_ERRORS as exc:
        return await unavailable(send, exc)
    if not exists:
        return await send_json(send, 404, envelope("not_found", "Session not found"))
    await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})

    async def pump(outbox: Outbox):
        async with contextlib.aclosing(event_stream(session_uuid, after)) as chunks:
            async for chunk in chunks:
                await outbox.write(chunk)

    with Outbox(send) as outbox:
        await until_disconnect(receive, pump(outbox))


class StreamRouter:
    """ASGI: event streams here, everything else to Django."""

    def __init__(self, django_app):
        self.django_app = django_app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            live.listen_now()  # then Django's side (everruns/front/bridge.py) answers the lifespan messages
        elif scope["type"] == "http" and scope["method"] == "GET" and (found := routes.of_request(scope)):
            route, ids = found
            if route.name == "sse" or (route.name == "events" and _wants_stream(scope)):
                scope[ROUTE] = route.template  # the metrics' `route` label
                return await serve_stream(scope, receive, send, ids["agent_id"], ids["session_id"])
        return await self.django_app(scope, receive, send)


def _wants_stream(scope) -> bool:
    """An events request that DRF's negotiation would answer as `text/event-stream`: DRF lets ?format= override
    the Accept header (its last value, as Django's QueryDict.get reads it)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("format"):
        return query["format"][-1] == "event-stream"
    return wants_stream(dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1"))


async def until_disconnect(receive, pump) -> None:
    """Run the coroutine `pump` (a response's body) until it ends or the client goes away, then stop both."""

    async def disconnect():
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping, listening = asyncio.create_task(pump), asyncio.create_task(disconnect())
    try:
        await asyncio.wait({pumping, listening}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, listening):
            task.cancel()
        await asyncio.gather(pumping, listening, return_exceptions=True)
