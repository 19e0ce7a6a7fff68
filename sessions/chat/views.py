"""The chat front-ends' routes in Django, for the OpenAPI document and for a deployment without the ASGI front.

Served by sessions/chat/sse.py in front of Django (uvicorn, `everruns.asgi:application`): these views only
document the routes, and when Django is reached directly (a WSGI server) they check the request the same
way and then answer 501, since a stream is served only from the event loop."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, viewsets

from agents.selectors import agent_get
from everruns.api.views import errors
from everruns.core.errors import AppError
from sessions import selectors
from sessions.chat import agui, aisdk

CURSOR = [
    OpenApiParameter(
        "Last-Event-ID",
        str,
        OpenApiParameter.HEADER,
        description="Go on after this cursor (an `id:` this stream sent): nothing shown twice, nothing lost.",
    ),
    OpenApiParameter("lastEventId", str, description="The same as `Last-Event-ID`, for clients that cannot set it."),
]
ANY = serializers.JSONField()
RUN_AGENT_INPUT = inline_serializer(
    name="RunAgentInput",
    fields={
        "threadId": serializers.CharField(help_text="Names a session of the agent (created on first use)."),
        "runId": serializers.CharField(),
        "messages": serializers.ListField(child=serializers.DictField(), help_text="The whole conversation."),
        "tools": serializers.ListField(
            child=serializers.DictField(),
            required=False,
            help_text=(
                "Front-end tools ({name, description, parameters}), offered to the model next to the agent's; a "
                "call to one ends the run (`outcome.pendingToolCallIds`); the next run's `tool` message answers it."
            ),
        ),
        "context": serializers.ListField(child=serializers.DictField(), required=False),
        "state": serializers.JSONField(required=False),
        "forwardedProps": serializers.JSONField(required=False),
        "resume": serializers.ListField(
            child=serializers.DictField(), required=False, help_text="Answers to the previous run's interrupts."
        ),
    },
)
CHAT_REQUEST = inline_serializer(
    name="ChatRequest",
    fields={
        "id": serializers.CharField(required=False, help_text="The chat's id (the session is the one in the path)."),
        "messages": serializers.ListField(child=serializers.DictField(), help_text="UI messages: the whole chat."),
        "trigger": serializers.ChoiceField(choices=aisdk.TRIGGERS, required=False),
        "messageId": serializers.CharField(required=False, allow_null=True),
    },
)
STREAM = OpenApiResponse(OpenApiTypes.STR, description="Server-Sent Events")


class StreamsOnlyFromAsgi(AppError):
    status, code = 501, "not_implemented"

    def __init__(self):
        super().__init__("This route streams: serve the API with uvicorn (everruns.asgi:application)")


# `/agents/{agent_id}/ag-ui`.
class AguiViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="agents_ag_ui",
        description=(
            "AG-UI: `RunAgentInput` in, AG-UI events out (SSE). `threadId` is a session of the agent (one of its "
            "session ids, or any other name: a session is created on first use); a run is a turn. Of the messages, "
            "those after the last one the session has are new: their user messages are stored and start the turn. "
            "Tool approvals are interrupts (`RUN_FINISHED` with `outcome: interrupt`); `resume` answers them with "
            "`payload: {approved, reason}`. A call to a front-end tool (`tools`) ends the run with "
            "`outcome: {type: success, pendingToolCallIds}`; a `tool` message in the next run answers it. "
            "Each event carries its cursor (`id:` and `metadata.everruns.cursor`)."
        ),
        request=RUN_AGENT_INPUT,
        parameters=CURSOR,
        responses={(200, "text/event-stream"): STREAM, **errors(400, 404, 409, 413, 415, 429)},
    )
    def create(self, request, agent_id):
        agent_get(agent_id=agent_id)
        run_input = agui.parse_input(request.data)
        agui.incoming(run_input)
        agui.client_tools(run_input)
        raise StreamsOnlyFromAsgi()


# `.../sessions/{session_id}/chat` and `.../chat/stream`.
class ChatViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="sessions_chat",
        description=(
            "The Vercel AI SDK's UI message stream protocol (`useChat`; header `x-vercel-ai-ui-message-stream: v1`): "
            "`{id, messages, trigger}` in, UI message chunks out (SSE), ending with `[DONE]`. The user messages after "
            "the last message the session has are stored; answered tool approvals are decided. A turn is one "
            "assistant UI message; stop it with `POST .../cancel`."
        ),
        request=CHAT_REQUEST,
        parameters=CURSOR,
        responses={(200, "text/event-stream"): STREAM, **errors(400, 404, 409, 413, 415, 429)},
    )
    def create(self, request, agent_id, session_id):
        selectors.session_get(agent_id=agent_id, session_id=session_id, with_agent=True)
        aisdk.parse_request(request.data)
        raise StreamsOnlyFromAsgi()

    @extend_schema(
        operation_id="sessions_chat_stream",
        description=(
            "Resume the running turn's UI message stream (the AI SDK's resume). With a cursor (`Last-Event-ID`), "
            "exactly what came after it; without one, the turn from its start (the AI SDK's client starts the "
            "message over at `start`). 204 when no turn is running. `.../chat/{session_id}/stream` is the same "
            "route where the AI SDK's default transport looks for it."
        ),
        parameters=CURSOR,
        responses={(200, "text/event-stream"): STREAM, 204: None, **errors(400, 404)},
    )
    def stream(self, request, agent_id, session_id, chat_id=None):
        selectors.session_get(agent_id=agent_id, session_id=session_id, with_agent=True)
        raise StreamsOnlyFromAsgi()
