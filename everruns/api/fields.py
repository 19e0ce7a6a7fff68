"""Serializer pieces every app shares."""

from rest_framework import serializers

MAX_TAGS = 50
MAX_TAG_LENGTH = 100


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, so a typo is a 400 rather than silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class TagsField(serializers.ListField):
    def __init__(self, **kwargs):
        super().__init__(
            child=serializers.CharField(max_length=MAX_TAG_LENGTH, allow_blank=False),
            max_length=MAX_TAGS,
            **kwargs,
        )
