"""An MCP tool server that agents may use (`mcp:<name>` in their capabilities)."""

from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from everruns.core import netguard
from everruns.core.ids import uuid7

NAME_PATTERN = r"^[a-z0-9_-]{1,64}$"
MAX_TIMEOUT_SECONDS = 300


def url_refusal(url: str) -> str | None:
    """Why an MCP server may not be reached at `url` (not http(s), or a host that is not public and that
    MCP_ALLOWED_HOSTS does not list), or None. Checked when saved and again at each connect (everruns/mcp)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return "Must be an http or https URL."
    try:
        netguard.check_url(url, django_settings.MCP_ALLOWED_HOSTS)
    except netguard.RefusedAddress as exc:
        return f"{exc}; an operator can allow a private MCP server by listing its host in MCP_ALLOWED_HOSTS."
    return None


class McpServer(models.Model):
    class Transport(models.TextChoices):
        STREAMABLE_HTTP = "streamable_http"
        SSE = "sse"

    class Policy(models.TextChoices):
        ASK = "ask"
        AUTO = "auto"

    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(NAME_PATTERN, "1-64 characters of a-z, 0-9, _ and -.")],
        help_text="Agents name it as the capability mcp:<name>; its tools are offered as mcp__<name>__<tool>.",
    )
    url = models.CharField(max_length=2048)
    transport = models.CharField(max_length=32, choices=Transport.choices, default=Transport.STREAMABLE_HTTP)
    # {name: value}, JSON, Fernet-encrypted like provider keys (agents/secrets.py); never shown.
    headers_encrypted = models.TextField(blank=True, default="")
    header_names = models.JSONField(default=list, blank=True)
    timeout_seconds = models.FloatField(
        default=30, validators=[MinValueValidator(0.1), MaxValueValidator(MAX_TIMEOUT_SECONDS)]
    )
    default_policy = models.CharField(max_length=8, choices=Policy.choices, default=Policy.ASK)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # The server's tools as it listed them: [{name, description, parameters, idempotent}].
    tools = models.JSONField(default=list, blank=True)
    tools_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "MCP server"

    def __str__(self):
        return self.name

    @property
    def capability_id(self) -> str:
        return f"mcp:{self.name}"

    def clean(self):
        if self.url and (refusal := url_refusal(self.url)):
            raise ValidationError({"url": [refusal]})
