from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from agents import model_profiles
from agents.models import LlmModel, LlmProvider, validate_provider_type
from everruns.api.fields import StrictBooleanField, StrictSerializer

MAX_MODEL_CAPABILITIES = 50

PROFILE_SCHEMA = inline_serializer(
    name="LlmModelProfile",
    fields={
        "name": serializers.CharField(),
        "family": serializers.CharField(),
        "context_window": serializers.IntegerField(allow_null=True),
        "max_output_tokens": serializers.IntegerField(allow_null=True),
        "tool_call": serializers.BooleanField(),
        "vision": serializers.BooleanField(),
        "input_cost_per_token": serializers.FloatField(allow_null=True),
        "output_cost_per_token": serializers.FloatField(allow_null=True),
    },
    allow_null=True,
)


class LlmProviderInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=255)
    provider_type = serializers.CharField(max_length=64)
    base_url = serializers.URLField(max_length=2048, allow_null=True, required=False)
    api_key = serializers.CharField(max_length=4096, allow_null=True, allow_blank=True, required=False, write_only=True)
    settings = serializers.DictField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=LlmProvider.Status.choices, required=False)
    is_default = StrictBooleanField(required=False)

    def validate_provider_type(self, value):
        validate_provider_type(value)
        return value


class LlmProviderSerializer(serializers.ModelSerializer):
    api_key_set = serializers.SerializerMethodField()

    class Meta:
        model = LlmProvider
        fields = [
            "id",
            "name",
            "provider_type",
            "base_url",
            "api_key_set",
            "settings",
            "status",
            "is_default",
            "created_at",
            "updated_at",
        ]

    def get_api_key_set(self, provider) -> bool:
        return bool(provider.api_key_encrypted)


class LlmModelInputSerializer(StrictSerializer):
    model_id = serializers.CharField(max_length=255)
    display_name = serializers.CharField(max_length=255, allow_blank=True, allow_null=True, required=False)
    is_default = serializers.BooleanField(required=False)
    status = serializers.ChoiceField(choices=LlmModel.Status.choices, required=False)
    capabilities = serializers.ListField(
        child=serializers.CharField(max_length=64, allow_blank=False), max_length=MAX_MODEL_CAPABILITIES, required=False
    )
    settings = serializers.DictField(required=False, allow_null=True, help_text='e.g. {"context_window": 8192}')


class LlmModelSerializer(serializers.ModelSerializer):
    provider_id = serializers.UUIDField()
    capabilities = serializers.ListField(child=serializers.CharField())
    profile = serializers.SerializerMethodField(
        help_text="What litellm's model map says of this model, or null for a model it does not know."
    )

    class Meta:
        model = LlmModel
        fields = [
            "id",
            "provider_id",
            "model_id",
            "display_name",
            "is_default",
            "status",
            "capabilities",
            "profile",
            "settings",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(PROFILE_SCHEMA)
    def get_profile(self, model) -> dict | None:
        return model_profiles.profile(model.model_id, provider_type=model.provider.provider_type)
