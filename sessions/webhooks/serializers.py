from rest_framework import serializers

from agents.models import Agent
from everruns.api.fields import StrictBooleanField, StrictSerializer
from sessions.webhooks.models import EVENT_TYPES, Webhook, WebhookDelivery


class WebhookInputSerializer(StrictSerializer):
    url = serializers.URLField(max_length=2048)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), min_length=1, max_length=len(EVENT_TYPES), required=False
    )
    agent_id = serializers.UUIDField(allow_null=True, required=False)
    description = serializers.CharField(allow_blank=True, allow_null=True, required=False, max_length=10_000)
    enabled = StrictBooleanField(required=False)

    def validate_events(self, value):
        return list(dict.fromkeys(value))  # once each, in the order given

    def validate_agent_id(self, value):
        if value is not None and not Agent.objects.filter(pk=value).exists():
            raise serializers.ValidationError(f"No agent with id {value}.")
        return value


class WebhookSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(allow_null=True)
    events = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "agent_id", "description", "enabled", "created_at", "updated_at"]


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="`whsec_` + base64 of the signing key's bytes; shown this once.")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_type",
            "session_id",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "created_at",
            "delivered_at",
        ]
