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


class CheckedObjectField(serializers.Field):
    """A JSON value stored and shown as it is, once `errors` (what is wrong with it, as messages; the same
    rules the model's `clean()` applies) finds nothing. Subclasses document their shape for OpenAPI with
    `extend_schema_field`."""

    def errors(self, value) -> list[str]:
        raise NotImplementedError

    def to_internal_value(self, data):
        if found := self.errors(data):
            raise serializers.ValidationError(found)
        return data

    def to_representation(self, value):
        return value


def limits_schema(kinds: dict[str, str], description: str) -> dict:
    """The OpenAPI shape of a `limits` object: each key optional, a number (or integer) above 0, or null."""
    limit = {"minimum": 0, "exclusiveMinimum": True, "nullable": True}
    return {
        "type": "object",
        "properties": {name: {"type": kind, **limit} for name, kind in kinds.items()},
        "additionalProperties": False,
        "description": description,
    }


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean only: DRF's BooleanField also reads "yes", "on", "true", 1 and 0 as booleans."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
