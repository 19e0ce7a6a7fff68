from rest_framework import serializers

from agents.schedules.models import Schedule, ScheduleRun
from everruns.api.fields import StrictBooleanField, StrictSerializer
from sessions.serializers import MessageBodySerializer


class ScheduleInputSerializer(StrictSerializer):
    cron = serializers.CharField(max_length=255, help_text="5 fields: minute hour day-of-month month day-of-week.")
    timezone = serializers.CharField(max_length=64, required=False, help_text="IANA time zone; default UTC.")
    message = MessageBodySerializer(help_text="What each run posts: {content: [part, ...]}.")
    session_id = serializers.UUIDField(allow_null=True, required=False)
    enabled = StrictBooleanField(required=False)
    overlap = serializers.ChoiceField(choices=Schedule.Overlap.choices, required=False)

    def validate_message(self, value):
        return {"content": [dict(part) for part in value["content"]]}


class ScheduleSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField()
    session_id = serializers.UUIDField(allow_null=True)
    message = serializers.DictField()

    class Meta:
        model = Schedule
        fields = [
            "id",
            "agent_id",
            "cron",
            "timezone",
            "message",
            "session_id",
            "enabled",
            "overlap",
            "next_run_at",
            "last_run_at",
            "created_at",
            "updated_at",
        ]


class ScheduleRunSerializer(serializers.ModelSerializer):
    error = serializers.DictField(allow_null=True)

    class Meta:
        model = ScheduleRun
        fields = ["id", "scheduled_for", "manual", "session_id", "message_id", "status", "error", "created_at"]
