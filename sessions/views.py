import hashlib
import json
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection as db_connection
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from agents.selectors import agent_get
from everruns.api.auth import OPEN, stream_token_create
from everruns.api.fields import StrictBooleanField, StrictSerializer
from everruns.api.pagination import list_schema, page_parameters, paginated
from everruns.api.views import errors, validated
from everruns.core.dates import rfc3339
from everruns.core.errors import ValidationError
from sessions import selectors, services, turns
from sessions.serializers import (
    EventSerializer,
    MessageInputSerializer,
    MessageSerializer,
    SessionInputSerializer,
    SessionSerializer,
)
from sessions.streams.stream import event_stream, parse_cursor

PAGE = page_parameters()
MAX_STREAM_TOKEN_SECONDS = 3600


def _request_hash(*parts) -> str:
    """What makes two message posts "the same request" for Idempotency-Key: the validated body."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _compact(value):
    """Drop empty nested objects so `controls: {}` is stored as null."""
    if isinstance(value, dict):
        value = {k: _compact(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in value.items() if v not in ({}, None)} or None
    return value


class CancelInputSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=1000, required=False, allow_null=True, allow_blank=True)


class ApprovalInputSerializer(StrictSerializer):
    approved = StrictBooleanField()
    reason = serializers.CharField(max_length=1000, required=False, allow_null=True, allow_blank=True)


# `.../agents/{agent_id}/sessions` and `.../sessions/{session_id}`.
class SessionViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="sessions_list",
        parameters=PAGE,
        responses={200: list_schema(SessionSerializer), **errors(400, 404)},
    )
    def list(self, request, agent_id):
        agent_get(agent_id=agent_id)
        return paginated(request, selectors.session_list(agent_id=agent_id), SessionSerializer)

    @extend_schema(
        operation_id="sessions_create",
        request=SessionInputSerializer,
        responses={201: SessionSerializer, **errors(400, 404, 409, 415)},
    )
    def create(self, request, agent_id):
        agent = agent_get(agent_id=agent_id, fields=("id", "status", "default_model_id"))  # what session_create reads
        data = validated(SessionInputSerializer, request.data)
        session = services.session_create(agent=agent, **data)
        return Response(SessionSerializer(session).data, status=201)

    @extend_schema(operation_id="sessions_get", responses={200: SessionSerializer, **errors(404)})
    def retrieve(self, request, agent_id, session_id):
        return Response(SessionSerializer(selectors.session_get(agent_id=agent_id, session_id=session_id)).data)

    @extend_schema(
        operation_id="sessions_update",
        request=SessionInputSerializer,
        responses={200: SessionSerializer, **errors(400, 404, 415)},
    )
    def partial_update(self, request, agent_id, session_id):
        session = selectors.session_get(agent_id=agent_id, session_id=session_id)
        data = validated(SessionInputSerializer, request.data, partial=True)
        return Response(SessionSerializer(services.session_update(session=session, **data)).data)

    @extend_schema(operation_id="sessions_delete", responses={204: None, **errors(404)})
    def destroy(self, request, agent_id, session_id):
        services.session_delete(session=selectors.session_get(agent_id=agent_id, session_id=session_id))
        return Response(status=204)

    @extend_schema(
        operation_id="sessions_cancel",
        description=(
            "Stop the session's running, queued or waiting turn at once: the in-flight LLM call is abandoned "
            "(its text so far kept with `metadata.cancelled: true`), running tools are told to stop, "
            "`turn.cancelled` is emitted and the status returns to `pending`. 409 when nothing runs."
        ),
        request=CancelInputSerializer,
        responses={202: SessionSerializer, **errors(400, 404, 409, 415)},
    )
    def cancel(self, request, agent_id, session_id):
        session = selectors.session_get(agent_id=agent_id, session_id=session_id)
        reason = validated(CancelInputSerializer, request.data).get("reason") or None
        return Response(SessionSerializer(turns.turn_cancel_request(session_id=session.pk, reason=reason)).data, 202)

    @extend_schema(
        operation_id="sessions_compact",
        description=(
            "Compact the session's context now: a worker replaces the older messages, in what the model sees, by "
            "a summary the model writes, and emits `context.compacted {summary, through_sequence, tokens_before, "
            "tokens_after, model, usage}`. The stored messages never change. The session is `running` until it is "
            "done. 409 while a turn runs."
        ),
        request=None,
        responses={202: SessionSerializer, **errors(404, 409, 429)},
    )
    def compact(self, request, agent_id, session_id):
        session = selectors.session_get(agent_id=agent_id, session_id=session_id, with_agent=True)
        key_id = getattr(request, "principal", OPEN).turn_key_id
        return Response(SessionSerializer(services.compaction_request(session=session, api_key_id=key_id)).data, 202)


# `.../sessions/{session_id}/tool-calls/{tool_call_id}/approval`.
class ToolCallViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="tool_calls_approval",
        description=(
            "Approve or deny a tool call that awaits approval (`tool.approval_requested`). Approved, the tool "
            "runs; denied, the model gets the tool error `denied: <reason>`. The turn goes on once every call "
            "it waits for is decided. Unknown call -> 404, decided already -> 409."
        ),
        request=ApprovalInputSerializer,
        responses={202: SessionSerializer, **errors(400, 404, 409, 415)},
    )
    def approval(self, request, agent_id, session_id, tool_call_id):
        session = selectors.session_get(agent_id=agent_id, session_id=session_id)
        data = validated(ApprovalInputSerializer, request.data)
        turns.approval_resolve(
            session_id=session.pk,
            tool_call_id=tool_call_id,
            approved=data["approved"],
            reason=data.get("reason") or None,
        )
        session.refresh_from_db()
        return Response(SessionSerializer(session).data, status=202)


class StreamTokenInputSerializer(StrictSerializer):
    ttl_seconds = serializers.IntegerField(min_value=1, max_value=MAX_STREAM_TOKEN_SECONDS, required=False)


STREAM_TOKEN = inline_serializer(
    name="StreamToken", fields={"token": serializers.CharField(), "expires_at": serializers.DateTimeField()}
)


# `.../sessions/{session_id}/stream-token`: a short-lived token a browser puts in `?token=` to read this
# session's events (EventSource cannot send an Authorization header); it reads only, and dies with its key.
class StreamTokenViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="sessions_stream_token",
        request=StreamTokenInputSerializer,
        responses={201: STREAM_TOKEN, **errors(400, 404, 415)},
    )
    def create(self, request, agent_id, session_id):
        session = selectors.session_get(agent_id=agent_id, session_id=session_id)
        ttl = (
            validated(StreamTokenInputSerializer, request.data).get("ttl_seconds") or settings.STREAM_TOKEN_TTL_SECONDS
        )
        minter = getattr(request, "principal", OPEN)
        token, expires = stream_token_create(session.pk, min(ttl, MAX_STREAM_TOKEN_SECONDS), minter)
        return Response({"token": token, "expires_at": rfc3339(datetime.fromtimestamp(expires, UTC))}, status=201)


# `.../sessions/{session_id}/messages`.
class MessageViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="messages_list",
        parameters=PAGE,
        responses={200: list_schema(MessageSerializer), **errors(400, 404)},
    )
    def list(self, request, agent_id, session_id):
        session = selectors.session_get(agent_id=agent_id, session_id=session_id)
        return paginated(request, selectors.message_list(session_id=session.pk), MessageSerializer)

    @extend_schema(
        operation_id="messages_create",
        request=MessageInputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={201: MessageSerializer, 200: MessageSerializer, **errors(400, 404, 409, 413, 415)},
    )
    def create(self, request, agent_id, session_id):
        session = selectors.session_get(agent_id=agent_id, session_id=session_id, with_agent=True)
        data = validated(MessageInputSerializer, request.data)
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and len(key) > 255:
            raise ValidationError("Invalid Idempotency-Key", details={"Idempotency-Key": ["At most 255 characters."]})
        content = [dict(p) for p in data["message"]["content"]]
        controls = _compact(json.loads(json.dumps(data.get("controls") or {}, default=str)))
        metadata = data.get("metadata")
        message, created = services.message_post(
            session=session,
            content=content,
            controls=controls,
            metadata=metadata,
            idempotency_key=key,
            idempotency_hash=_request_hash(content, controls, metadata) if key else None,
            api_key_id=getattr(request, "principal", OPEN).turn_key_id,
        )
        return Response(MessageSerializer(message).data, status=201 if created else 200)


class EventStreamRenderer(BaseRenderer):
    media_type = "text/event-stream"
    format = "event-stream"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Only errors reach a renderer on this media type; the stream itself bypasses renderers.
        return json.dumps(data).encode()


# `.../sessions/{session_id}/events`: the event log as a JSON list, or as an SSE stream on the same URL.
class EventViewSet(viewsets.ViewSet):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    def handle_exception(self, exc):
        # Errors are JSON even when the client asked for a stream (404 before streaming).
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return super().handle_exception(exc)

    @extend_schema(
        operation_id="events_list",
        description=(
            "The session's event log. With `Accept: text/event-stream` the same route is a Server-Sent "
            "Events stream: history after the cursor (`Last-Event-ID`, `?lastEventId=` or `?after=`), then live."
        ),
        parameters=[*PAGE, OpenApiParameter("after", int), OpenApiParameter("lastEventId", str)],
        responses={
            200: list_schema(EventSerializer),
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="SSE stream"),
            **errors(400, 404),
        },
    )
    def list(self, request, agent_id, session_id):
        session = selectors.session_get(agent_id=agent_id, session_id=session_id)
        after = self._after(request)
        if request.accepted_renderer.format == "event-stream":
            return self._stream(session, after)
        return paginated(request, selectors.event_list(session_id=session.pk, after=after), EventSerializer)

    @extend_schema(
        operation_id="events_sse",
        description=(
            "The same Server-Sent Events stream as `GET .../events` with `Accept: text/event-stream` (upstream "
            "Everruns' route for it): same cursor, auth and limits."
        ),
        parameters=[OpenApiParameter("after", int), OpenApiParameter("lastEventId", str)],
        responses={
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="SSE stream"),
            **errors(400, 404),
        },
    )
    def sse(self, request, agent_id, session_id):
        # Served in front of Django (sessions/streams/sse.py); this answers the same in Django's own test client.
        session = selectors.session_get(agent_id=agent_id, session_id=session_id)
        return self._stream(session, self._after(request))

    @staticmethod
    def _stream(session, after: int) -> StreamingHttpResponse:
        # Django closes this request's connection only when the response ends; a stream may
        # last hours, so release it now (the stream reads the log with short-lived connections).
        db_connection.close()
        response = StreamingHttpResponse(event_stream(session.pk, after), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response

    @staticmethod
    def _after(request) -> int:
        raw = (
            request.headers.get("Last-Event-ID")
            or request.query_params.get("lastEventId")
            or request.query_params.get("after")
        )
        if raw in (None, ""):
            return 0
        cursor = parse_cursor(raw)
        if cursor is None:
            raise ValidationError("Invalid cursor", details={"after": ["Must be a non-negative event sequence."]})
        return cursor
