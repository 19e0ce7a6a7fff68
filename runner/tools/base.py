"""Capabilities bring prompt text and tools; a tool is a JSON-Schema'd function."""

from collections.abc import Callable
from dataclasses import dataclass, field


class ToolError(Exception):
    """A failure the model should see as the tool's `error` (the turn goes on)."""


@dataclass
class ToolContext:
    session_id: str
    turn_id: str | None = None


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict
    func: Callable[[ToolContext, dict], object]
    timeout_seconds: float | None = None  # None: TOOL_TIMEOUT_SECONDS

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
