from django.db.models import QuerySet

from agents.mcp.models import McpServer
from everruns.selectors import get_object


def server_get(*, server_id) -> McpServer:
    return get_object(McpServer, "MCP server not found", pk=server_id)


def server_list() -> QuerySet[McpServer]:
    return McpServer.objects.order_by("-id")


def servers_named(names: list[str], *, active_only: bool = True) -> list[McpServer]:
    """The servers with these names (`mcp:<name>` capabilities), in the order of `names`."""
    if not names:
        return []
    qs = McpServer.objects.filter(name__in=names)
    if active_only:
        qs = qs.filter(status=McpServer.Status.ACTIVE)
    found = {s.name: s for s in qs}
    return [found[n] for n in names if n in found]
