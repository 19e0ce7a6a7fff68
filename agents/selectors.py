import json

from django.db import connection
from django.db.models import Q, QuerySet

from agents.models import Agent
from everruns.errors import NotFound, ValidationError


def agent_get(*, agent_id) -> Agent:
    try:
        return Agent.objects.get(pk=agent_id)
    except Agent.DoesNotExist:
        raise NotFound("Agent not found") from None


def json_list_contains(field: str, value: str) -> Q:
    """`value` is an element of the JSON list in `field`, on PostgreSQL and SQLite alike."""
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__contains": [value]})

    return Q(**{f"{field}__icontains": json.dumps(value)})


def agent_list(*, status: str | None = None, tag: str | None = None, search: str | None = None) -> QuerySet[Agent]:
    qs = Agent.objects.all().order_by("-id")
    status = Agent.Status.ACTIVE if status is None else status
    if status not in {"active", "archived", "all"}:
        raise ValidationError("Invalid status filter", details={"status": ["Must be active, archived or all."]})
    if status != "all":
        qs = qs.filter(status=status)
    if tag:
        qs = qs.filter(json_list_contains("tags", tag))
    if search:
        qs = qs.filter(name__icontains=search)
    return qs
