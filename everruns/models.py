from django.db import models

from everruns.core.ids import uuid7


class ApiKey(models.Model):
    """A key for `/v1`. Only a hash of the secret is stored; the secret is shown once, at creation."""

    class Scope(models.TextChoices):
        ADMIN = "admin"  # everything
        AGENTS = "agents"  # agents, sessions, messages, events, files, capabilities; reads providers and models

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=255)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.AGENTS)
    prefix = models.CharField(max_length=16, unique=True, editable=False)  # the key's first characters, for look-up
    key_hash = models.CharField(max_length=64, editable=False)  # SHA-256 of the whole key, hex
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "API key"
        # A staff login is `agents` scope on /v1 unless it has this (or is a superuser): everruns/api/auth.py.
        permissions = [("api_admin", "Can use /v1 with admin scope (providers, models, API keys) when logged in")]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
