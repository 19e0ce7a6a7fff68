from django.db import models

from everruns.core.ids import uuid7


class Schedule(models.Model):
    """A message an agent gets on a cron schedule, in a fixed session or a new one per run."""

    class Overlap(models.TextChoices):
        SKIP = "skip"  # the previous run's turn is still open: this time is recorded as skipped
        QUEUE = "queue"  # post anyway: the open turn sees the message at its next LLM call

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="schedules")
    cron = models.CharField(max_length=255, help_text="5 fields: minute hour day-of-month month day-of-week.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA time zone the cron is read in.")
    message = models.JSONField(help_text='{"content": [part, ...]}')
    session = models.ForeignKey(
        "agent_sessions.Session", null=True, blank=True, on_delete=models.CASCADE, related_name="schedules"
    )
    enabled = models.BooleanField(default=True)
    overlap = models.CharField(max_length=8, choices=Overlap.choices, default=Overlap.SKIP)
    # The API key that created the schedule ("" when none did), as Turn.api_key_id: the turns its due times start
    # count against that key's MAX_TURNS_PER_KEY (a manual run's count against its caller's key).
    api_key_id = models.CharField(max_length=64, blank=True, default="")
    # The next due time (UTC); a scheduler claims it by moving it on in the same transaction as the run.
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        app_label = "agents"

    def __str__(self):
        return f"{self.cron} ({self.timezone})"


class ScheduleRun(models.Model):
    class Status(models.TextChoices):
        STARTED = "started"
        SKIPPED = "skipped"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    # The due time this run is for; a manual run's is the moment it was asked for.
    scheduled_for = models.DateTimeField()
    manual = models.BooleanField(default=False)
    session_id = models.UUIDField(null=True, blank=True)
    message_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        app_label = "agents"
        constraints = [
            # Each due time fires once, however many schedulers race for it.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"],
                condition=models.Q(manual=False),
                name="unique_schedule_due_time",
            )
        ]
