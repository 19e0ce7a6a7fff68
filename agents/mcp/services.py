"""MCP servers: create, change, refresh their tool list, delete. Headers are encrypted before they are stored,
like provider keys (agents/secrets.py), and follow the same rule: a new URL drops them unless new ones come."""

import json
import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import secrets
from agents.mcp.models import McpServer
from everruns.core.errors import Conflict, ValidationError
from everruns.mcp.config import McpUnavailable, ServerConfig
from everruns.services import full_clean, instance_update

SERVER_FIELDS = [
    "name",
    "url",
    "transport",
    "headers_encrypted",
    "header_names",
    "timeout_seconds",
    "default_policy",
    "status",
]
MAX_HEADERS = 50
MAX_HEADER_VALUE_CHARS = 8192
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# Headers the transport itself sets: a stored one would break the protocol or the connection.
RESERVED_HEADERS = {
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
}


def headers_errors(headers) -> list[str]:
    """What is wrong with a `headers` object; empty when nothing is."""
    if not isinstance(headers, dict):
        return ["Must be an object mapping a header name to its value."]
    if len(headers) > MAX_HEADERS:
        return [f"At most {MAX_HEADERS} headers."]
    errors = []
    for name, value in headers.items():
        shown = repr(str(name)[:40])
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            errors.append(f"{shown}: not a valid header name.")
        elif name.lower() in RESERVED_HEADERS:
            errors.append(f"{shown}: set by the MCP transport itself.")
        elif not isinstance(value, str) or len(value) > MAX_HEADER_VALUE_CHARS:
            errors.append(f"{shown}: the value must be a string of at most {MAX_HEADER_VALUE_CHARS} characters.")
        elif any(c in value for c in "\r\n\x00"):
            errors.append(f"{shown}: the value must not hold CR, LF or NUL.")
    return errors


def _encrypted(headers: dict | None) -> tuple[str, list[str]]:
    if not headers:
        return "", []
    try:
        return secrets.encrypt(json.dumps(headers)), sorted(headers)
    except secrets.SecretsNotConfigured:
        raise ValidationError(
            "Cannot store headers: SECRETS_ENCRYPTION_KEY is not configured",
            details={"headers": ["The server has no encryption key configured; nothing was stored."]},
        ) from None


def server_headers(server: McpServer) -> dict[str, str]:
    """The stored headers, decrypted (raises secrets.SecretUnreadable)."""
    if not server.headers_encrypted:
        return {}
    headers = json.loads(secrets.decrypt(server.headers_encrypted))
    for value in headers.values():
        secrets.remember(value)  # each value is redacted from logs on its own too
    return headers


def server_config(server: McpServer) -> ServerConfig:
    """How to reach the server (its headers decrypted): for the web's listing and the worker's calls."""
    return ServerConfig(
        id=str(server.pk),
        name=server.name,
        url=server.url,
        transport=server.transport,
        headers=tuple(sorted(server_headers(server).items())),
        timeout_seconds=float(server.timeout_seconds),
        connect_timeout=min(settings.MCP_CONNECT_TIMEOUT_SECONDS, float(server.timeout_seconds)),
        allowed_hosts=tuple(settings.MCP_ALLOWED_HOSTS),
        max_message_bytes=settings.MCP_MAX_RESULT_BYTES,
    )


def list_tools(config: ServerConfig) -> list[dict]:
    """The server's tools (everruns/mcp/client.py); the SDK loads with the first listing, not at the web's start."""
    from everruns.mcp import client  # noqa: PLC0415 - the SDK costs the web 0.5 s at start

    return client.list_tools(config)


def server_refresh(*, server: McpServer) -> McpServer:
    """List the server's tools again and store them; an unreachable server keeps its old list, with `last_error`.
    Network first, then one short write: no transaction is held while the server answers."""
    try:
        tools, error = list_tools(server_config(server)), None
    except (McpUnavailable, secrets.SecretUnreadable, secrets.SecretsNotConfigured) as exc:
        tools, error = None, str(exc) or type(exc).__name__
    now = timezone.now()
    fields = {"last_error": error, "updated_at": now}
    if tools is not None:
        fields.update(tools=tools, tools_refreshed_at=now)
    McpServer.objects.filter(pk=server.pk).update(**fields)
    for name, value in fields.items():
        setattr(server, name, value)
    return server


def _name_taken(name: str, exclude=None) -> bool:
    return McpServer.objects.filter(name=name).exclude(pk=exclude).exists()


def server_create(
    *,
    name: str,
    url: str,
    transport: str = McpServer.Transport.STREAMABLE_HTTP,
    headers: dict | None = None,
    timeout_seconds: float = 30,
    default_policy: str = McpServer.Policy.ASK,
    status: str = McpServer.Status.ACTIVE,
) -> McpServer:
    if _name_taken(name):
        raise Conflict(f"An MCP server named {name} exists already")
    server = McpServer(
        name=name,
        url=url,
        transport=transport,
        timeout_seconds=timeout_seconds,
        default_policy=default_policy,
        status=status,
    )
    full_clean(server)
    server.headers_encrypted, server.header_names = _encrypted(headers)
    try:
        with transaction.atomic():
            server.save()
    except IntegrityError:  # created meanwhile by another request
        raise Conflict(f"An MCP server named {name} exists already") from None
    return server_refresh(server=server)


def server_update(*, server: McpServer, data: dict) -> McpServer:
    data = dict(data)
    if "name" in data and data["name"] != server.name and _name_taken(data["name"], exclude=server.pk):
        raise Conflict(f"An MCP server named {data['name']} exists already")
    if "headers" in data:
        data["headers_encrypted"], data["header_names"] = _encrypted(data.pop("headers"))
    elif "url" in data and data["url"] != server.url:
        # The stored headers were given for the old URL: they must not follow it to a new one.
        data["headers_encrypted"], data["header_names"] = "", []
    reach = ("url", "transport", "headers_encrypted", "timeout_seconds", "status")
    before = {name: getattr(server, name) for name in reach}
    try:
        with transaction.atomic():
            instance_update(server, fields=SERVER_FIELDS, data=data)
    except IntegrityError:
        raise Conflict(f"An MCP server named {data.get('name')} exists already") from None
    if any(getattr(server, name) != value for name, value in before.items()) and server.status == "active":
        server_refresh(server=server)  # a new address or credentials: its tools as it lists them now
    return server


def server_save(*, server: McpServer, headers: dict | None = None, clear_headers: bool = False) -> McpServer:
    """Save a server as the admin's form edited it (the model's rules already run): new headers are encrypted;
    clearing them, or a new URL without new ones, removes the stored ones (as server_update)."""
    stored_url = McpServer.objects.filter(pk=server.pk).values_list("url", flat=True).first()
    if headers:
        server.headers_encrypted, server.header_names = _encrypted(headers)
    elif clear_headers or (stored_url is not None and stored_url != server.url):
        server.headers_encrypted, server.header_names = "", []
    server.save()
    return server


def server_delete(*, server: McpServer) -> None:
    server.delete()


def headers_rotate() -> tuple[int, list[McpServer]]:
    """Re-encrypt every server's stored headers with the current key: (done, the servers whose headers no
    configured key reads). For `manage.py rotate_secrets`, inside its transaction."""
    done, unreadable = 0, []
    for server in McpServer.objects.select_for_update().exclude(headers_encrypted=""):
        try:
            server.headers_encrypted = secrets.rotate(server.headers_encrypted)
        except secrets.SecretUnreadable:
            unreadable.append(server)
            continue
        server.save(update_fields=["headers_encrypted", "updated_at"])
        done += 1
    return done, unreadable
