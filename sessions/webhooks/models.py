from django.db import models

from everruns.core.ids import uuid7

# The stored event types of the contract ("Events"); `message.delta` is live-only and never delivered.
EVENT_TYPES = [
    "message.user",
    "message.assistant",
    "message.tool_result",
    "session.status",
    "turn.started",
    "turn.completed",
    "turn.failed",
    "turn.cancelled",
    "llm.started",
    "llm.completed",
    "llm.retrying",
    "tool.started",
    "tool.completed",
    "tool.approval_requested",
    "tool.approval_resolved",
]
DEFAULT_EVENTS = ["turn.completed", "turn.failed", "turn.cancelled", "tool.approval_requested"]


def default_events() -> list:
    return list(DEFAULT_EVENTS)


class Webhook(models.Model):
    """An endpoint that hears about a session's events: a delivery is stored with each matching event."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=default_events, help_text="Event types delivered.")
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="+", help_text="Only this agent."
    )
    description = models.TextField(blank=True, null=True)
    enabled = models.BooleanField(default=True)
    # `whsec_` + base64 of the key's bytes; the one before a rotation signs too until it expires.
    secret = models.CharField(max_length=128, editable=False)
    previous_secret = models.CharField(max_length=128, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        app_label = "agent_sessions"

    def __str__(self):
        return self.url


class WebhookDelivery(models.Model):
    """One event for one webhook (the outbox row): written in the event's transaction, sent by workers.

    `event_id` and `session_id` are plain columns, not foreign keys: deleting a session deletes its events
    with one statement, and the delivery history stays (a delivery whose event is gone fails)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)  # also the `webhook-id` header
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    session_id = models.UUIDField(db_index=True)
    agent_id = models.UUIDField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    last_response_excerpt = models.TextField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A sender holds the delivery until then (one attempt at a time; a sender that died lets go by itself).
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        app_label = "agent_sessions"
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The sweeper's scan: only pending deliveries are in it.
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_pending_due"),
            models.Index(fields=["webhook", "-id"], name="delivery_of_webhook"),
        ]
