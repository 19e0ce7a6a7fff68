from rest_framework import serializers

from agents.models import LlmModel, LlmProvider, validate_provider_type
from everruns.api.fields import StrictSerializer


class LlmProviderInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=255)
    provider_type = serializers.CharField(max_length=64)
    base_url = serializers.URLField(max_length=2048, allow_null=True, required=False)
    api_key = serializers.CharField(max_length=4096, allow_null=True, allow_blank=True, required=False, write_only=True)
    settings = serializers.DictField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=LlmProvider.Status.choices, required=False)

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
    settings = serializers.DictField(required=False, allow_null=True, help_text='e.g. {"context_window": 8192}')


class LlmModelSerializer(serializers.ModelSerializer):
    provider_id = serializers.UUIDField()

    class Meta:
        model = LlmModel
        fields = [
            "id",
            "provider_id",
            "model_id",
            "display_name",
            "is_default",
            "status",
            "settings",
            "created_at",
            "updated_at",
        ]
