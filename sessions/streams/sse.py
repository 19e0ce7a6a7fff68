"""Session event streams served straight from ASGI, in front of Django's handler.

Django's ASGI handler runs a request's sync middleware and views on a thread of its own and keeps
that thread for the whole response, so every open stream would pin one. Here an open stream is an
asyncio task and nothing else: no thread, and no database connection between its reads of the log.
The same route without `Accept: text/event-stream` (the JSON list) goes on to Django.
"""

import asyncio
import contextlib
import json
import logging
import re
import uuid
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from rest_framework.utils.mediatypes import media_type_matches, order_by_precedence

from everruns.api.auth import Denied, Principal, authenticate
from everruns.api.errors import DATABASE_ERRORS, RETRY_UNAVAILABLE_SECONDS, UNAVAILABLE, envelope
from everruns.api.limits import stream_slots
from everruns.front.bridge import ROUTE, on_db_thread
from sessions.models import Session
from sessions.streams import live
from sessions.streams.stream import event_stream, parse_cursor

STREAM_PATH = re.compile(r"^/v1/agents/(?P<agent_id>[^/]+)/sessions/(?P<session_id>[^/]+)/events$")
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

logger = logging.getLogger(__name__)


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


async def _json(send, status: int, body: dict, extra_headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += extra_headers or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


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


def _staff_session(cookie_header: str) -> bool:
    """Whether the Django session cookie belongs to a logged-in active staff user (the debug pages)."""
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except CookieError:
        return False
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=morsel.value)
    user_id = store.get(SESSION_KEY)
    return bool(user_id) and get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).exists()


async def _principal(scope, headers: dict) -> Principal:
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    query_string = scope.get("query_string", b"").decode("latin-1")
    staff = False
    if settings.AUTH_MODE != "none" and not authorization and "token=" not in query_string:
        staff = await on_db_thread(_staff_session, headers.get(b"cookie", b"").decode("latin-1"))
    return await on_db_thread(
        authenticate,
        method="GET",
        path=scope["path"],
        authorization=authorization,
        query_string=query_string,
        staff=staff,
    )


async def _unavailable(send, exc) -> None:
    """The database is away before the stream starts: 503 with Retry-After (EventSource retries on its own)."""
    logger.warning("event stream: database unavailable: %s", exc)
    retry = [(b"retry-after", str(RETRY_UNAVAILABLE_SECONDS).encode())]
    await _json(send, 503, envelope(*UNAVAILABLE), retry)


async def serve_stream(scope, receive, send, agent_id: str, session_id: str) -> None:
    headers = dict(scope.get("headers") or [])
    try:
        principal = await _principal(scope, headers)
    except Denied as denied:
        extra = [(b"www-authenticate", b'Bearer realm="everruns"')] if denied.status == 401 else []
        return await _json(send, denied.status, envelope(denied.code, denied.message), extra)
    except DATABASE_ERRORS as exc:
        return await _unavailable(send, exc)
    try:
        agent_uuid, session_uuid = uuid.UUID(agent_id), uuid.UUID(session_id)
    except ValueError:
        return await _json(send, 404, envelope("not_found", "Not found"))
    slot = principal.key_id or "open"
    if not stream_slots.take(slot):
        message = "Too many open event streams (MAX_STREAMS_PER_KEY / MAX_STREAMS_PER_PROCESS)"
        return await _json(send, 429, envelope("rate_limited", message), [(b"retry-after", b"5")])
    try:
        await _serve(scope, receive, send, headers, agent_uuid, session_uuid)
    finally:
        stream_slots.give_back(slot)


async def _serve(scope, receive, send, headers: dict, agent_uuid: uuid.UUID, session_uuid: uuid.UUID) -> None:
    after = _cursor(scope, headers)
    if after is False:
        details = {"after": ["Must be a non-negative event sequence."]}
        return await _json(send, 400, envelope("validation_error", "Invalid cursor", details))
    try:
        exists = await on_db_thread(_session_exists, agent_uuid, session_uuid)
    except DATABASE_ERRORS as exc:
        return await _unavailable(send, exc)
    if not exists:
        return await _json(send, 404, envelope("not_found", "Session not found"))
    await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})

    async def pump():
        async with contextlib.aclosing(event_stream(session_uuid, after)) as chunks:
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})

    await until_disconnect(receive, pump())


class StreamRouter:
    """ASGI: event streams here, everything else to Django."""

    def __init__(self, django_app):
        self.django_app = django_app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            live.listen_now()  # then Django's side (everruns/front/bridge.py) answers the lifespan messages
        elif scope["type"] == "http" and scope["method"] == "GET":
            match = STREAM_PATH.match(scope["path"])
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
            # DRF lets ?format= override the Accept header (its last value, as Django's QueryDict.get reads it).
            stream = query["format"][-1] == "event-stream" if query.get("format") else wants_stream(accept)
            if match and stream:
                scope[ROUTE] = "v1/agents/<uuid:agent_id>/sessions/<uuid:session_id>/events"  # sessions/urls.py's
                return await serve_stream(scope, receive, send, match["agent_id"], match["session_id"])
        return await self.django_app(scope, receive, send)


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
