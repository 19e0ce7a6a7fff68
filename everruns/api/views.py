"""Shared view helpers."""

from django.http import QueryDict
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from everruns.core.errors import ValidationError

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


# Input serializers that take `{}` and give `{}` back (every field optional, no defaults): an empty body,
# the most common one on some routes (create session), then skips building the serializer, ~14 % of that
# request (py-spy). Filled the first time each class validates `{}`.
_EMPTY_IS_EMPTY: dict[type, bool] = {}


def validated(serializer_class, data, *, partial: bool = False) -> dict:
    """The request body (`request.data`) through an input serializer. No body at all is `{}` (DRF gives an empty
    QueryDict for it; the JSON parser is the only one, so a QueryDict is never a body)."""
    if isinstance(data, QueryDict):
        data = {}
    if not isinstance(data, dict):
        raise ValidationError("Request body must be a JSON object", details={"body": ["Expected a JSON object."]})
    if not data and _EMPTY_IS_EMPTY.get(serializer_class):
        return {}
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    if not data and not partial:
        _EMPTY_IS_EMPTY[serializer_class] = serializer.validated_data == {}
    return serializer.validated_data
