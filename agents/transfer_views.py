import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, renderers, views
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from agents import selectors, transfer
from agents.serializers import AgentSerializer
from everruns.api.views import ERROR_SCHEMA, errors


class MarkdownParser(parsers.BaseParser):
    """A text/markdown body as a string (UTF-8 unless the Content-Type names another charset)."""

    media_type = "text/markdown"

    def parse(self, stream, media_type=None, parser_context=None):
        match = re.search(r"charset=([\w.:-]+)", media_type or "", re.I)
        charset = match.group(1) if match else "utf-8"
        try:
            return (stream.read() if stream else b"").decode(charset)  # text encodings only
        except (LookupError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not text in {charset}: {exc}") from None


class MarkdownRenderer(renderers.BaseRenderer):
    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.encode("utf-8")


class MarkdownOut(DefaultContentNegotiation):
    """The export is Markdown whatever the Accept header says (a file download); errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class JsonErrors:
    """Errors, and the OPTIONS description, are JSON."""

    def _answer_in_json(self):
        self.request.accepted_renderer = renderers.JSONRenderer()
        self.request.accepted_media_type = "application/json"

    def handle_exception(self, exc):
        self._answer_in_json()
        return super().handle_exception(exc)

    def options(self, request, *args, **kwargs):
        self._answer_in_json()
        return super().options(request, *args, **kwargs)


# `GET /v1/agents/{agent_id}/export`: the agent as Markdown with YAML front matter (agents/transfer.py).
class AgentExportView(JsonErrors, views.APIView):
    renderer_classes = [MarkdownRenderer]
    content_negotiation_class = MarkdownOut

    @extend_schema(
        operation_id="agents_export",
        responses={
            (200, "text/markdown"): OpenApiResponse(
                OpenApiTypes.STR, description="YAML front matter with the agent's settings; the system prompt as body."
            ),
            (404, "application/json"): OpenApiResponse(ERROR_SCHEMA),
        },
    )
    def get(self, request, agent_id):
        agent = selectors.agent_get(agent_id=agent_id)
        response = Response(transfer.agent_export(agent=agent))
        response["Content-Disposition"] = f'attachment; filename="{_filename(agent.name)}.md"'
        return response


# `POST /v1/agents/import`: a Markdown file (or plain text: a system prompt) -> a new agent.
class AgentImportView(views.APIView):
    parser_classes = [MarkdownParser]

    @extend_schema(
        operation_id="agents_import",
        request={
            "text/markdown": {
                "type": "string",
                "description": "YAML front matter (name, description, tags, capabilities, tool_policy, limits, "
                "model, max_iterations) and the system prompt as body; or plain text: a system prompt whose "
                "first line names the agent.",
            }
        },
        responses={201: AgentSerializer, **errors(400, 415)},
    )
    def post(self, request):
        agent = transfer.agent_import(text=request.data if isinstance(request.data, str) else "")
        return Response(AgentSerializer(agent).data, status=201)


def _filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:80] or "agent"
