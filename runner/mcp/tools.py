"""The tools an agent's `mcp:<server>` capabilities bring, from the tool lists stored with each server (a turn
never lists tools itself)."""

import logging

from agents import secrets
from agents.capabilities import MCP_PREFIX, mcp_tool_name
from agents.mcp import selectors
from agents.mcp.services import server_config
from everruns.mcp.config import ServerConfig
from runner.tools.base import Tool, ToolContext

logger = logging.getLogger(__name__)
# Past the server's own time-out (which ends the call and tells the server), the runner's backstop.
BACKSTOP_SECONDS = 5.0


def _runner(config: ServerConfig, tool_name: str):
    async def run(ctx: ToolContext, arguments: dict):
        from everruns.mcp import client  # noqa: PLC0415 - the SDK only where a call runs (0.5 s at the web's start)

        # The call id is stable across a resumed turn: the server can use it as an idempotency key.
        return await client.call_tool(config, tool_name, arguments, call_id=ctx.idempotency_key or "")

    return run


def tools_for(capability_ids: list[str]) -> list[Tool]:
    """The tools of the agent's active MCP servers, in the order of its capabilities (a database read)."""
    names = [c.removeprefix(MCP_PREFIX) for c in capability_ids if c.startswith(MCP_PREFIX)]
    tools = []
    for server in selectors.servers_named(names):
        try:
            config = server_config(server)
        except (secrets.SecretUnreadable, secrets.SecretsNotConfigured) as exc:
            logger.warning("MCP server %s: headers unreadable (%s); its tools are not offered", server.name, exc)
            continue
        for info in server.tools or []:
            tools.append(
                Tool(
                    name=mcp_tool_name(server.name, info["name"]),
                    description=info.get("description") or "",
                    parameters=info.get("parameters") or {"type": "object", "properties": {}},
                    run=_runner(config, info["name"]),
                    timeout_seconds=config.timeout_seconds + BACKSTOP_SECONDS,
                    idempotent=bool(info.get("idempotent")),
                    default_policy=server.default_policy,
                )
            )
    return tools
