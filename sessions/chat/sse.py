"""The chat front-ends' routes, served from ASGI like the event stream (sessions/streams/sse.py): AG-UI
(`POST /v1/agents/{agent_id}/ag-ui`) and the AI SDK's UI message stream (`POST .../sessions/{session_id}/chat`,
`GET .../chat/stream` to resume). An open stream is an asyncio task reading the log with the event stream's
exactly-once loop (sessions.streams.stream.log_items); what a request stores runs on a thread
(sessions.chat.services). The protocols' mappings are sessions/chat/agui.py and sessions/chat/aisdk.py.

A response's messages carry a cursor as their SSE `id:`; sending it back as `Last-Event-ID` (or
`?lastEventId=`) with the same request, or to `GET .../chat/stream`, goes on after it: nothing shown twice,
nothing lost. `GET .../chat/stream` without one replays the running turn from its start, which is what the
AI SDK's resume expects (its client starts the message over at `start`).
"""

import contextlib
import functools
import json
import uuid
from urllib.parse import parse_qs

from agents.models import Agent
from everruns.api.auth import Denied
from everruns.api.errors import DATABASE_ERRORS, envelope
from everruns.api.limits import stream_slots
from everruns.api.parsers import UnstorableJson, check_json, nested_too_deeply
from everruns.core.errors import AppError, NotFound, TooManyRequests, ValidationError
from everruns.front import routes
from everruns.front.access import caller, require_json
from everruns.front.answers import denied, send_json, unavailable
from everruns.front.bridge import ROUTE, on_db_thread, read_body
from sessions.chat import agui, aisdk
from sessions.chat import services as chat_services
from sessions.chat.run import Cursor, RunView
from sessions.models import Session
from sessions.streams.sse import until_disconnect
from sessions.streams.stream import KEEPALIVE, Outbox, log_items, read_events_after

AGUI_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


class ChatRouter:
    """ASGI: the chat front-ends' routes here, everything else on to `app`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and (found := routes.of_request(scope)):
            route, ids = found
            if route.name == "ag-ui":
                scope[ROUTE] = route.template  # the metrics' `route` label
                return await _guarded(serve_agui(scope, receive, send, ids["agent_id"]), send)
            if route.name == "chat":
                scope[ROUTE] = route.template
                return await _guarded(serve_chat(scope, receive, send, ids["agent_id"], ids["session_id"]), send)
            if route.name == "chat-resume":
                scope[ROUTE] = route.template
                resume = serve_resume(scope, receive, send, ids["agent_id"], ids["session_id"], ids.get("chat_id"))
                return await _guarded(resume, send)
        return await self.app(scope, receive, send)


class _Answered(Exception):
    """The response was sent already (a refused body)."""


async def _guarded(handler, send) -> None:
    """Errors raised before the stream starts, as the JSON envelope (the stream itself never raises them)."""
    try:
        await handler
    except _Answered:
        pass
    except Denied as refusal:
        await denied(send, refusal)
    except AppError as error:
        extra = [(b"retry-after", str(error.retry_after).encode())] if isinstance(error, TooManyRequests) else []
        await send_json(send, error.status, envelope(error.code, error.message, error.details), extra)
    except DATABASE_ERRORS as exc:
        await unavailable(send, exc)


def _db(fn):
    """`fn` on the web threads (everruns.front.bridge.on_db_thread), like every database read of a stream."""
    return functools.partial(on_db_thread, fn)


async def _json_body(scope, receive, send):
    require_json(scope)
    body = await read_body(scope, receive, send)
    if body is None:
        raise _Answered
    try:
        return check_json(json.loads(body or b"null"))
    except RecursionError:
        raise ValidationError("Malformed JSON", details={"body": [str(nested_too_deeply())]}) from None
    except UnstorableJson as refused:
        raise ValidationError("Malformed JSON", details={"body": [str(refused)]}) from None
    except ValueError:
        raise ValidationError("Malformed JSON", details={"body": ["Not valid JSON."]}) from None


def _uuid(value: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        raise NotFound("Not found") from None


def _cursor(scope, headers: dict) -> Cursor | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    raw = headers.get(b"last-event-id", b"").decode("latin-1") or (query.get("lastEventId") or [""])[0]
    if not raw:
        return None
    cursor = Cursor.parse(raw)
    if cursor is None:
        message = "Must be an id this stream sent (start-sequence-chars-shown)."
        raise ValidationError("Invalid cursor", details={"Last-Event-ID": [message]})
    return cursor


# --- the requests' database work, on threads ------------------------------------------------------------
@_db
def _agui_session(agent_id: uuid.UUID, thread_id: str) -> tuple[Session, int]:
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise NotFound("Agent not found")
    session = chat_services.thread_session(agent=agent, thread_id=thread_id)
    return session, session.last_event_sequence


@_db
def _session(agent_id: uuid.UUID, session_id: uuid.UUID) -> Session:
    session = Session.objects.select_related("agent").filter(pk=session_id, agent_id=agent_id).first()
    if session is None:
        raise NotFound("Session not found")
    return session


_post = _db(chat_services.chat_post)
_resume_start = _db(chat_services.run_resume_start)


@_db
def _stored_events(session_id, after: int, upto: int) -> list[dict]:
    """The stored events in (after, upto], as dicts, to rebuild a view at a cursor."""
    events = []
    while after < upto:
        items, last, more = read_events_after(session_id, after)
        events += [json.loads(data) for _, sequence, data in items if sequence <= upto]
        if not items or last >= upto or not more:
            break
        after = last
    return events


# --- the handlers -------------------------------------------------------------------------------------
async def serve_agui(scope, receive, send, agent_id: str) -> None:
    headers = dict(scope.get("headers") or [])
    principal = await caller(scope)
    agent_uuid = _uuid(agent_id)
    run_input = agui.parse_input(await _json_body(scope, receive, send))
    cursor = _cursor(scope, headers)
    messages, decisions, tools = agui.incoming(run_input), agui.approvals(run_input), agui.client_tools(run_input)
    session, before = await _agui_session(agent_uuid, run_input.thread_id)
    extra = {"ag_ui": {k: v for k, v in (("context", run_input.context), ("state", run_input.state)) if v}}
    extra = {"ag_ui": json.loads(json.dumps(extra["ag_ui"], default=_dump))} if extra["ag_ui"] else None

    async def store():
        return await _post(
            session=session,
            messages=messages,
            approvals=decisions,
            metadata=extra,
            api_key_id=principal.turn_key_id,
            client_tools=tools,
        )

    def view(start, turn_id):
        ids = {"session_id": str(session.pk), "turn_id": turn_id}
        return agui.AguiRun(start=start, thread_id=run_input.thread_id, run_id=run_input.run_id, **ids)

    response_headers = [*AGUI_HEADERS, (b"x-everruns-session-id", str(session.pk).encode())]
    await _run(scope, receive, send, principal, session, before, cursor, store, view, agui.encode, "", response_headers)


async def serve_chat(scope, receive, send, agent_id: str, session_id: str) -> None:
    headers = dict(scope.get("headers") or [])
    principal = await caller(scope)
    ids = _uuid(agent_id), _uuid(session_id)
    request = aisdk.parse_request(await _json_body(scope, receive, send))
    cursor = _cursor(scope, headers)
    session = await _session(*ids)

    async def store():
        return await _post(
            session=session,
            messages=request["messages"],
            approvals=request["approvals"],
            api_key_id=principal.turn_key_id,
        )

    def view(start, turn_id):
        return aisdk.UiMessageRun(start=start, session_id=str(session.pk), turn_id=turn_id)

    before = session.last_event_sequence
    await _run(scope, receive, send, principal, session, before, cursor, store, view, aisdk.encode, aisdk.DONE)


async def serve_resume(scope, receive, send, agent_id: str, session_id: str, chat_id: str | None) -> None:
    headers = dict(scope.get("headers") or [])
    principal = await caller(scope)
    ids = _uuid(agent_id), _uuid(session_id)
    if chat_id is not None and chat_id != session_id:  # the AI SDK's `{api}/{chatId}/stream`: the chat is the session
        raise NotFound("Not found")
    cursor = _cursor(scope, headers)
    session = await _session(*ids)
    if cursor is None:
        start, turn_id = await _resume_start(session=session)
        if start is None:  # nothing running: the AI SDK's "no stream to resume"
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return

        async def store():
            return start, turn_id
    else:

        async def store():
            return cursor.start, None

    def view(start, turn_id):
        return aisdk.UiMessageRun(start=start, session_id=str(session.pk), turn_id=turn_id or _turn_of(session))

    before = cursor.sequence if cursor else start
    await _run(scope, receive, send, principal, session, before, cursor, store, view, aisdk.encode, aisdk.DONE)


def _turn_of(session: Session) -> str | None:
    return str(session.active_turn_id) if session.active_turn_id else None


def _dump(value):
    return value.model_dump(by_alias=True) if hasattr(value, "model_dump") else str(value)


# --- the stream ----------------------------------------------------------------------------------------
async def _run(scope, receive, send, principal, session, before, cursor, store, make_view, encode, done, headers=None):
    """Listen first (so the turn's first deltas reach this stream), store the request, then stream the run."""
    slot = principal.key_id or "open"
    if not stream_slots.take(slot):
        message = "Too many open event streams (MAX_STREAMS_PER_KEY / MAX_STREAMS_PER_PROCESS)"
        raise TooManyRequests(message, retry_after=5)
    try:
        after = cursor.sequence if cursor else before
        items = log_items(session.pk, after)
        async with contextlib.aclosing(items):
            await anext(items)  # the listener is registered
            start, turn_id = await store()
            if cursor is not None:
                start = cursor.start
            view = make_view(start if start is not None else before, turn_id)
            if cursor is not None:
                stored = await _stored_events(session.pk, cursor.start, cursor.sequence)
                view.resume(cursor, stored)
            await send({"type": "http.response.start", "status": 200, "headers": headers or aisdk.HEADERS})
            with Outbox(send) as outbox:
                frames = (encode(m, c) for m, c in view.opening(resumed=cursor is not None))
                await outbox.write("".join(frames))
                if start is None and cursor is None:  # nothing runs: open and close at once
                    closing = view.on_end("completed", {})
                    return await outbox.write("".join(encode(m) for m in closing) + done, last=True)
                if view.ended:  # resumed after the end: the client missed only the closing
                    closing = view.on_end(view.outcome, view.end_data)
                    return await outbox.write("".join(encode(m) for m in closing) + done, last=True)
                await _stream(receive, outbox, view, items, encode, done)
    finally:
        stream_slots.give_back(slot)


async def _stream(receive, outbox: Outbox, view: RunView, items, encode, done: str) -> None:
    async def pump():
        async for batch in items:
            if batch is KEEPALIVE:
                await outbox.write(": keep-alive\n\n")
                continue
            out = []
            for _, _, data in batch:
                out += [encode(m, c) for m, c in view.feed(json.loads(data))]
            if out:
                await outbox.write("".join(out))
            if view.ended:
                return await outbox.write(done, last=True)

    await until_disconnect(receive, pump())
