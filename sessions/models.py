from django.core.exceptions import ValidationError
from django.db import models

from agents import policies
from everruns.core.ids import uuid7


class Session(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        WAITING = "waiting"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="sessions")
    title = models.CharField(max_length=255, blank=True, null=True)
    tags = models.JSONField(default=list, blank=True)
    model = models.ForeignKey("agents.LlmModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.JSONField(null=True, blank=True)
    active_turn = models.ForeignKey("Turn", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_usd = models.FloatField(null=True, blank=True)
    # {"max_cost_usd", "max_tokens"}: checked before every LLM call against what the session has used.
    limits = models.JSONField(default=dict, blank=True)
    # The name a chat front-end gave this conversation (an AG-UI threadId that is not one of our ids).
    external_id = models.CharField(max_length=255, null=True, blank=True)
    # Counters behind the per-session sequences. Only the append functions in sessions.log touch
    # them, with an UPDATE that also serialises concurrent appenders on this row.
    last_event_sequence = models.BigIntegerField(default=0)
    last_message_sequence = models.BigIntegerField(default=0)
    # The latest `context.compacted` event's {summary, through_sequence, sequence, turn_id}, written in the
    # event's transaction: every step reads the session row anyway, so what the model sees costs no extra query.
    compaction = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["agent", "external_id"], name="unique_session_external_id")]

    def __str__(self):
        return self.title or str(self.id)

    def clean(self):
        # The rules of the budgets, for the admin's form and a PATCH (instance_update runs full_clean).
        if found := policies.limits_errors(self.limits, policies.SESSION_LIMITS):
            raise ValidationError({"limits": found})


class Turn(models.Model):
    """One run of the agentic loop, from the messages that started it until the answer."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        WAITING = "waiting"  # a tool call awaits approval: no worker holds the turn
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)  # a worker holds it, or should soon (the sweeper watches these)
    OPEN = (Status.QUEUED, Status.RUNNING, Status.WAITING)  # not ended: the session's one turn

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="turns")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    input_message_ids = models.JSONField(default=list)
    iterations = models.PositiveIntegerField(default=0)
    error = models.JSONField(null=True, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_usd = models.FloatField(null=True, blank=True)
    # Lease: the worker running the turn keeps pushing lease_expires_at ahead (database clock);
    # once it passes, another worker may take the turn over. For a queued turn it is the time by
    # which a worker should have taken it, after which the sweeper queues it again.
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    # The API key whose message started the turn ("" when none did): turns at once are capped per key.
    api_key_id = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Control, stored so that a worker resuming the turn after a crash sees it too.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(null=True, blank=True)
    # The sequence of the newest message posted with `controls.interrupt` (0: none).
    interrupt_sequence = models.BigIntegerField(default=0)
    # The newest message the last stored LLM response was given: a user message after it is unanswered.
    answered_sequence = models.BigIntegerField(default=0)
    # Tool calls that need approval: {tool_call_id: {"name", "status": pending|approved|denied, "reason"}}.
    approvals = models.JSONField(default=dict, blank=True)
    # Tools a front-end declared for this turn (AG-UI `tools`: [{name, description, parameters}]): offered to
    # the model, run by the client. A call to one ends the turn; the client answers in its next run.
    client_tools = models.JSONField(default=list, blank=True)
    # The W3C trace context ({"traceparent": ...}) of the request that queued the turn, when tracing is on: the
    # turn's spans, built when it ends (everruns/telemetry/tracing.py), go into that request's trace.
    trace_context = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # MAX_TURNS_PER_KEY counts a key's active turns on every message: only those are in this index. An
            # index of every turn's key (and one of every turn's status) made the count visit all of the key's
            # turns, ended ones and dead row versions included: ~6 ms at 35,000 turns, growing with each.
            models.Index(
                fields=["api_key_id"], condition=models.Q(status__in=["queued", "running"]), name="turn_active_key"
            )
        ]


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"
        TOOL_RESULT = "tool_result"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="messages")
    turn = models.ForeignKey(Turn, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    sequence = models.BigIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.JSONField(default=list)
    controls = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    # sha256 of the request that stored the message under `idempotency_key`: a replay must match it.
    idempotency_hash = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sequence"]
        constraints = [
            models.UniqueConstraint(fields=["session", "sequence"], name="unique_message_sequence"),
            models.UniqueConstraint(fields=["session", "idempotency_key"], name="unique_message_idempotency_key"),
        ]


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="events")
    turn_id = models.UUIDField(null=True, blank=True)
    sequence = models.BigIntegerField()
    type = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sequence"]
        constraints = [models.UniqueConstraint(fields=["session", "sequence"], name="unique_event_sequence")]


class SessionFile(models.Model):
    """A file or directory in a session's own virtual file system. Paths are normalised: "/a/b.txt"."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=1024)
    is_directory = models.BooleanField(default=False)
    # Refuses new content (403) until made writable again; upstream Everruns' `is_readonly`.
    is_readonly = models.BooleanField(default=False)
    content = models.BinaryField(default=b"")
    size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["session", "path"], name="unique_session_file_path")]


# The webhooks' models live in their own package; imported here so that Django's app registry finds them.
from sessions.webhooks.models import Webhook, WebhookDelivery  # noqa: E402,F401
