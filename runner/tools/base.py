"""Capabilities bring prompt text and tools; a tool is a JSON-Schema'd function."""

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


class ToolError(Exception):
    """A failure the model should see as the tool's `error` (the turn goes on)."""


@dataclass
class ToolContext:
    session_id: str
    turn_id: str | None = None
    # The tool call's id: stable across a resumed turn, so a tool can use it as an idempotency key.
    idempotency_key: str | None = None
    # Set when the turn is cancelled: a long tool should check `cancelled.is_set()` and stop early.
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict
    # Runs on a tool thread; raises ToolError for an error the model sees.
    func: Callable[[ToolContext, dict], object] | None = None
    timeout_seconds: float | None = None  # None: TOOL_TIMEOUT_SECONDS
    # Running it twice has the effect of running it once. A call of a tool that is not idempotent that
    # started but has no stored result when its turn resumes is never run again (runner/loop.py).
    idempotent: bool = True
    # Instead of `func`: a coroutine on the worker's event loop, (result, error) (an MCP server's tool, which
    # waits on the network and holds no thread). Cancelling it stops the call.
    run: Callable[[ToolContext, dict], Awaitable[tuple[object, str | None]]] | None = None
    # Its policy when the agent's tool_policy names neither it nor "*".
    default_policy: str = "auto"

    def schema(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def openai_schema(self) -> dict:
        return {"type": "function", "function": self.schema()}


@dataclass
class Capability:
    id: str
    name: str
    description: str
    category: str
    system_prompt: str = ""
    tools: list[Tool] = field(default_factory=list)
    status: str = "available"

    def info(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "category": self.category,
            "system_prompt": self.system_prompt or None,
            "tools": [t.schema() for t in self.tools],
        }


def obj(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties, "required": required or [], "additionalProperties": False}
