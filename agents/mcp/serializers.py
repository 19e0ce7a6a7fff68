from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.mcp import services
from agents.mcp.models import MAX_TIMEOUT_SECONDS, NAME_PATTERN, McpServer
from everruns.api.fields import CheckedObjectField, StrictSerializer


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "maxProperties": services.MAX_HEADERS,
        "description": "Header name -> value, sent with every request to the server (write only, encrypted at rest).",
    }
)
class HeadersField(CheckedObjectField):
    def errors(self, value):
        return services.headers_errors(value)


class _JsonString:
    """A JSON string only (DRF's string fields also take a number and turn it into one)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class NameField(_JsonString, serializers.RegexField):
    pass


class UrlField(_JsonString, serializers.URLField):
    pass


class McpServerInputSerializer(StrictSerializer):
    name = NameField(NAME_PATTERN, max_length=64)
    url = UrlField(max_length=2048)
    transport = serializers.ChoiceField(choices=McpServer.Transport.choices, required=False)
    headers = HeadersField(required=False, write_only=True)
    timeout_seconds = serializers.FloatField(min_value=0.1, max_value=MAX_TIMEOUT_SECONDS, required=False)
    default_policy = serializers.ChoiceField(choices=McpServer.Policy.choices, required=False)
    status = serializers.ChoiceField(choices=McpServer.Status.choices, required=False)


class McpToolSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.DictField()
    idempotent = serializers.BooleanField()


class McpServerSerializer(serializers.ModelSerializer):
    headers_set = serializers.ListField(source="header_names", child=serializers.CharField())
    tools = McpToolSerializer(many=True)

    class Meta:
        model = McpServer
        fields = [
            "id",
            "name",
            "url",
            "transport",
            "headers_set",
            "timeout_seconds",
            "default_policy",
            "status",
            "tools",
            "tools_refreshed_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
