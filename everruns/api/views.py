"""Shared view helpers."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from everruns.errors import ValidationError

ERROR_SCHEMA = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)


def errors(*codes: int) -> dict:
    return {code: OpenApiResponse(ERROR_SCHEMA) for code in codes}


def validated(serializer_class, data, *, partial: bool = False) -> dict:
    if not isinstance(data, dict):
        raise ValidationError("Request body must be a JSON object", details={"body": ["Expected a JSON object."]})
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
