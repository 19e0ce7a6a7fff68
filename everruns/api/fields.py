"""Serializer pieces every app shares."""

from rest_framework import serializers

MAX_TAGS = 50
MAX_TAG_LENGTH = 100


class StrictSerializer(serializers.Serializer):
    """The base of every input serializer: strict about the fields it knows (a wrong type or value is a 400),
    and it ignores the fields it does not know, as upstream Everruns does, so that clients written for it (which
    send fields such as `is_default` or `is_readonly` wherever their own structs have them) work unchanged
    (API.md, "Conventions"). DRF's Serializer leaves unknown keys out of `validated_data` by itself; this class
    is the one place that says so."""


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
