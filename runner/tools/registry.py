"""The capability registry: one module per capability under runner/tools, listed here by module name."""

import importlib

from agents import capabilities
from runner.mcp.tools import tools_for as mcp_tools_for
from runner.tools.base import Capability, Tool

MODULES = [
    "noop",
    "current_time",
    "arithmetic",  # capability id test_math
    "weather",  # capability id test_weather
    "stateless_todo_list",
    "web_fetch",
    "session_file_system",
]

CAPABILITIES: dict[str, Capability] = {}
for _name in MODULES:
    _cap = importlib.import_module(f"runner.tools.{_name}").CAPABILITY
    CAPABILITIES[_cap.id] = _cap


def publish_catalogue() -> None:
    """Let `agents` validate and list capability ids without importing the runner."""

    for cap in CAPABILITIES.values():
        capabilities.register(cap.id, cap.info())


def for_agent(capability_ids: list[str]) -> tuple[str, list[Tool]]:
    """The prompt additions and the union of tools of an agent's capabilities, in order (built-in ones, then
    those of its MCP servers)."""
    prompts, tools, seen = [], [], set()
    for cap_id in capability_ids:
        cap = CAPABILITIES.get(cap_id)
        if cap is None:
            continue
        if cap.system_prompt:
            prompts.append(cap.system_prompt)
        for tool in cap.tools:
            if tool.name not in seen:
                seen.add(tool.name)
                tools.append(tool)
    tools += [t for t in mcp_tools_for(capability_ids) if t.name not in seen]
    return "\n\n".join(prompts), tools


def system_prompt_and_tools(agent) -> tuple[str, list[Tool]]:
    """What a turn of `agent` sends as its system prompt (its capabilities' prompt text, then its own)
    and the tools it offers: the loop and the debug pages' context view both build it here."""
    prompt_extra, tools = for_agent(agent.capabilities or [])
    return "\n\n".join(p for p in (prompt_extra, agent.system_prompt) if p), tools
