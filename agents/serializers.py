from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents import capabilities, policies
from agents.models import Agent, LlmModel
from everruns.api.fields import CheckedObjectField, StrictSerializer, TagsField, limits_schema

MAX_SYSTEM_PROMPT_BYTES = 1024 * 1024


class CapabilityIdsField(serializers.ListField):
    def __init__(self, **kwargs):
        super().__init__(child=serializers.CharField(max_length=100), max_length=100, **kwargs)

    def to_internal_value(self, data):
        ids = super().to_internal_value(data)
        known = capabilities.known_ids()  # one read: it lists the MCP servers too
        unknown = [c for c in ids if c not in known]
        if unknown:
            raise serializers.ValidationError(f"Unknown capability: {', '.join(unknown)}.")
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("Capabilities must not repeat.")
        return ids


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string", "enum": list(policies.TOOL_POLICY_MODES)},
        "maxProperties": policies.MAX_TOOL_POLICY_ENTRIES,
        "description": f'Tool name (at most {policies.MAX_TOOL_NAME_CHARS} characters) or "*" (any other tool) -> '
        '"auto" (runs at once; the default) or "ask" (waits for approval). Names need not be tools the agent has.',
    }
)
class ToolPolicyField(CheckedObjectField):
    def errors(self, value):
        return policies.tool_policy_errors(value)


@extend_schema_field(limits_schema(policies.AGENT_LIMITS, "Budgets of each turn; a missing or null key: no limit."))
class AgentLimitsField(CheckedObjectField):
    def errors(self, value):
        return policies.limits_errors(value, policies.AGENT_LIMITS)


class AgentInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=255)
    system_prompt = serializers.CharField(trim_whitespace=False)
    description = serializers.CharField(allow_blank=True, allow_null=True, required=False)
    tags = TagsField(required=False)
    capabilities = CapabilityIdsField(required=False)
    default_model_id = serializers.UUIDField(allow_null=True, required=False)
    max_iterations = serializers.IntegerField(min_value=1, max_value=1000, allow_null=True, required=False)
    tool_policy = ToolPolicyField(required=False)
    limits = AgentLimitsField(required=False)
    status = serializers.ChoiceField(choices=Agent.Status.choices, required=False)

    def validate_system_prompt(self, value):
        if len(value.encode("utf-8")) > MAX_SYSTEM_PROMPT_BYTES:
            raise serializers.ValidationError("Must be at most 1 MiB.")
        return value

    def validate_default_model_id(self, value):
        if value is not None and not LlmModel.objects.filter(pk=value).exists():
            raise serializers.ValidationError(f"No model with id {value}.")
        return value


class AgentSerializer(serializers.ModelSerializer):
    default_model_id = serializers.UUIDField(allow_null=True)
    tool_policy = ToolPolicyField()
    limits = AgentLimitsField()

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "description",
            "system_prompt",
            "tags",
            "capabilities",
            "default_model_id",
            "max_iterations",
            "tool_policy",
            "limits",
            "status",
            "created_at",
            "updated_at",
        ]
