"""What an MCP connection is made with, and how it fails: without the SDK, so that the web process, which only
lists a server's tools when asked to (agents/mcp/services.py), does not import it at start (0.5 s)."""

import dataclasses
import hashlib
import json


class McpUnavailable(Exception):
    """The server cannot be reached or used now (refused address, down, broken connection, protocol error)."""


class McpTimeout(Exception):
    pass


class SessionForgotten(McpUnavailable):
    """The server no longer knows our session (it restarted): the request did not run, a new session may."""


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    id: str
    name: str
    url: str
    transport: str  # "streamable_http" | "sse"
    headers: tuple[tuple[str, str], ...]
    timeout_seconds: float
    connect_timeout: float
    allowed_hosts: tuple[str, ...]
    max_message_bytes: int

    def fingerprint(self) -> str:
        """What a connection was opened with: a server changed since gets a new one."""
        return hashlib.sha256(json.dumps(dataclasses.astuple(self)).encode()).hexdigest()
