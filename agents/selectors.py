from django.db.models import QuerySet

from agents import capabilities
from agents.models import Agent, LlmModel, LlmProvider
from everruns.core import rows
from everruns.core.errors import NotFound, ValidationError
from everruns.selectors import get_object, json_list_contains


def agent_get(*, agent_id, fields: tuple[str, ...] = ()) -> Agent:
    """The agent; with `fields`, only those columns are read (the rest load on first use). Written out
    (everruns/core/rows.py): every session created and every agent read starts here."""
    agent = rows.by_pk(Agent, agent_id, fields=fields)
    if agent is None:
        raise NotFound("Agent not found")
    return agent


def agent_list(*, status: str | None = None, tag: str | None = None, search: str | None = None) -> QuerySet[Agent]:
    qs = Agent.objects.all().order_by("-id")
    status = Agent.Status.ACTIVE if status is None else status
    if status not in {"active", "archived", "all"}:
        raise ValidationError("Invalid status filter", details={"status": ["Must be active, archived or all."]})
    if status != "all":
        qs = qs.filter(status=status)
    for name, value in (("tag", tag), ("search", search)):
        if value and "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it rather than fail
            raise ValidationError("Invalid filter", details={name: ["Must not contain NUL characters."]})
    if tag:
        qs = qs.filter(json_list_contains("tags", tag))
    if search:
        qs = qs.filter(name__icontains=search)
    return qs


def provider_get(*, provider_id) -> LlmProvider:
    return get_object(LlmProvider, "Provider not found", pk=provider_id)


def provider_list() -> QuerySet[LlmProvider]:
    return LlmProvider.objects.order_by("-id")


def model_get(*, model_id) -> LlmModel:
    return get_object(LlmModel, "Model not found", pk=model_id)


def model_list(*, provider: LlmProvider | None = None) -> QuerySet[LlmModel]:
    """All models, or one provider's."""

    qs = LlmModel.objects.select_related("provider").order_by("-id")  # a model's profile needs its provider's type
    return qs if provider is None else qs.filter(provider=provider)


def capability_list() -> list[dict]:
    return capabilities.all_info()


def capability_get(*, capability_id: str) -> dict:
    info = capabilities.get_info(capability_id)
    if info is None:
        raise NotFound("Capability not found")
    return info
