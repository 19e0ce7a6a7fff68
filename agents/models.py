from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from agents import policies, provider_types
from agents.mcp.models import McpServer  # noqa: F401  (a model of the agents app, defined in its own package)
from everruns.core import netguard
from everruns.core.ids import uuid7


class Agent(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        ARCHIVED = "archived"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=255, db_index=True)
    description = models.TextField(blank=True, null=True)
    system_prompt = models.TextField()
    tags = models.JSONField(default=list, blank=True)
    capabilities = models.JSONField(default=list, blank=True, help_text="Ordered capability ids.")
    default_model = models.ForeignKey(
        "agents.LlmModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    max_iterations = models.PositiveIntegerField(null=True, blank=True, help_text="Default: TURN_MAX_ITERATIONS.")
    # {"<tool name>" | "*": "auto" | "ask"}: an `ask` tool waits for a person's approval before it runs.
    tool_policy = models.JSONField(default=dict, blank=True)
    # {"max_cost_usd_per_turn", "max_tokens_per_turn"}: checked before every LLM call of a turn.
    limits = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return self.name

    def clean(self):
        # The rules of the turn controls, for the admin's form and a PATCH (instance_update runs full_clean).
        errors = {}
        if found := policies.tool_policy_errors(self.tool_policy):
            errors["tool_policy"] = found
        if found := policies.limits_errors(self.limits, policies.AGENT_LIMITS):
            errors["limits"] = found
        if errors:
            raise ValidationError(errors)


def validate_provider_type(value: str) -> None:
    if value not in provider_types.ALL:
        raise ValidationError(
            f"Unknown provider type {value!r}: use a litellm provider (openai, anthropic, azure, gemini, ollama, ...), "
            "openai_compatible or llmsim."
        )


def _url_refusal(base_url: str) -> str | None:
    """Why a provider may not call `base_url` (not http(s), or a host that is not public and that
    LLM_ALLOWED_HOSTS does not list), or None."""
    try:
        parts = urlsplit(base_url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return "Must be an http or https URL."
    try:
        netguard.check_url(base_url, django_settings.LLM_ALLOWED_HOSTS)
    except netguard.RefusedAddress as exc:
        return f"{exc}; an operator can allow a private LLM server by listing its host in LLM_ALLOWED_HOSTS."
    return None


def endpoint_refusal(provider_type: str, base_url: str | None) -> str | None:
    """Why a provider may not call what it calls (its base_url, or its type's local default such as Ollama's),
    or None. Checked when a provider is saved, and again before each LLM call (runner.resolution): DNS
    answers change."""
    url = provider_types.called_url(provider_type, base_url)
    if url is None or (refusal := _url_refusal(url)) is None:
        return None
    return refusal if base_url else f"Without a base_url, {provider_type} calls {url}: {refusal}"


class LlmProvider(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=255)
    provider_type = models.CharField(max_length=64)
    base_url = models.CharField(max_length=2048, blank=True, null=True)
    api_key_encrypted = models.TextField(blank=True, default="")
    settings = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # At most one provider is the default (upstream Everruns' `is_default`); once one is, the global default
    # model is one of its models whenever it has any (agents.llm_services keeps the two together).
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_provider")
        ]

    def __str__(self):
        return f"{self.name} ({self.provider_type})"

    def clean(self):
        # The rules of a provider, for the API (agents.llm_services runs full_clean) and the admin's form alike.
        errors = {}
        try:
            if self.provider_type:  # blank is the field's own error
                validate_provider_type(self.provider_type)
        except ValidationError as exc:
            errors["provider_type"] = exc.messages
        if self.provider_type == "openai_compatible" and not self.base_url:
            errors["base_url"] = ["Required for openai_compatible."]
        elif refusal := endpoint_refusal(self.provider_type, self.base_url):
            errors["base_url"] = [refusal]
        if settings_errors := provider_types.settings_errors(self.settings):
            errors["settings"] = settings_errors
        if errors:
            raise ValidationError(errors)

    def validate_constraints(self, exclude=None):
        # A second default is no error: agents.llm_services moves the default to it, as for models.
        super().validate_constraints(exclude={*(exclude or ()), "is_default"})


class LlmModel(models.Model):
    """One of them is the global default. Making another model the default moves it there
    (agents.llm_services); the default cannot be unticked or deleted, so there always is one."""

    DEFAULT_REQUIRED = "There must be a default model; make another model the default instead"

    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    provider = models.ForeignKey(LlmProvider, on_delete=models.CASCADE, related_name="models")
    model_id = models.CharField(max_length=255, help_text="The provider's model name, e.g. gpt-4o-mini.")
    display_name = models.CharField(max_length=255, blank=True, default="")
    is_default = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # What the model can do, as upstream Everruns lists it (`chat`, `vision`, `tools`, ...): shown, not enforced.
    capabilities = models.JSONField(default=list, blank=True)
    # {"context_window": tokens}: wins over what litellm's model map says (runner.compaction).
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_model"),
            models.UniqueConstraint(fields=["provider", "model_id"], name="unique_model_per_provider"),
        ]

    def __str__(self):
        return self.display_name or self.model_id

    def clean(self):
        if not self.is_default and LlmModel.objects.filter(pk=self.pk, is_default=True).exists():
            raise ValidationError({"is_default": self.DEFAULT_REQUIRED})
        if found := provider_types.model_settings_errors(self.settings):
            raise ValidationError({"settings": found})

    def validate_constraints(self, exclude=None):
        # A second default is no error: saving it through agents.llm_services takes the default from the
        # old one, so one_default_model still holds in the database.
        super().validate_constraints(exclude={*(exclude or ()), "is_default"})


# The schedules' models live in their own package; imported here so that Django's app registry finds them.
from agents.schedules.models import Schedule, ScheduleRun  # noqa: E402,F401
