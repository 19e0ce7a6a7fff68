"""The catalogue of capability ids that agents may name.

The runner owns the built-in capabilities and fills this catalogue when it loads (runner.apps), so that
`agents` can validate ids without importing `runner`. MCP servers are capabilities too (`mcp:<server name>`),
read from the database: their tools are the ones the server listed, as the model is offered them.
"""

from agents.mcp.models import McpServer

MCP_PREFIX = "mcp:"
_catalogue: dict[str, dict] = {}


def register(capability_id: str, info: dict) -> None:
    _catalogue[capability_id] = info


def mcp_tool_name(server_name: str, tool_name: str) -> str:
    return f"mcp__{server_name}__{tool_name}"


def mcp_info(server: McpServer) -> dict:
    return {
        "id": server.capability_id,
        "name": f"MCP: {server.name}",
        "description": f"The tools of the MCP server {server.name}",
        "status": "available" if server.status == McpServer.Status.ACTIVE else "disabled",
        "category": "mcp",
        "system_prompt": None,
        "tools": [
            {
                "name": mcp_tool_name(server.name, t["name"]),
                "description": t.get("description") or "",
                "parameters": t.get("parameters") or {},
            }
            for t in server.tools or []
        ],
    }


def known_ids() -> set[str]:
    return set(_catalogue) | {MCP_PREFIX + name for name in McpServer.objects.values_list("name", flat=True)}


def all_info() -> list[dict]:
    return list(_catalogue.values()) + [mcp_info(s) for s in McpServer.objects.order_by("name")]


def get_info(capability_id: str) -> dict | None:
    if capability_id.startswith(MCP_PREFIX):
        server = McpServer.objects.filter(name=capability_id.removeprefix(MCP_PREFIX)).first()
        return mcp_info(server) if server else None
    return _catalogue.get(capability_id)
