"""What the debug pages read, on top of the apps' own selectors."""

from django.db.models import BooleanField, Count, ExpressionWrapper, Prefetch, Q, QuerySet

from agents import selectors as agent_selectors
from agents.models import Agent, LlmModel, LlmProvider, McpServer
from sessions import selectors as session_selectors
from sessions.models import Session

BUSY = [Session.Status.RUNNING, Session.Status.WAITING]


def agents_with_counts(*, status: str, search: str | None) -> QuerySet[Agent]:
    """Agents as `GET /v1/agents` filters them, each with its number of sessions and of busy ones."""
    return (
        agent_selectors.agent_list(status=status, search=search)
        .select_related("default_model")
        .annotate(
            session_count=Count("sessions"),
            busy_count=Count("sessions", filter=Q(sessions__status__in=BUSY)),
        )
    )


def agent_sessions(*, agent_id) -> QuerySet[Session]:
    return session_selectors.session_list(agent_id=agent_id).select_related("model")


def providers_with_models() -> QuerySet[LlmProvider]:
    """Providers with their models and whether a key is stored; the (encrypted) key itself is not read."""
    models = Prefetch("models", queryset=LlmModel.objects.order_by("model_id"))
    key_set = ExpressionWrapper(~Q(api_key_encrypted=""), output_field=BooleanField())
    return (
        agent_selectors.provider_list()
        .defer("api_key_encrypted")
        .annotate(api_key_set=key_set)
        .prefetch_related(models)
    )


def model_choices() -> list[LlmModel]:
    return list(LlmModel.objects.select_related("provider").order_by("provider__name", "model_id"))


def mcp_servers() -> QuerySet[McpServer]:
    """The MCP servers, without their (encrypted) headers."""
    return McpServer.objects.order_by("name").defer("headers_encrypted")
