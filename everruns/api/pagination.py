"""The list envelope: {items, total, limit, offset}."""

import functools

from rest_framework.response import Response

from everruns.api.errors import ValidationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def page_params(request) -> tuple[int, int]:
    errors = {}
    values = {}
    for name, default, maximum in (("limit", DEFAULT_LIMIT, MAX_LIMIT), ("offset", 0, None)):
        raw = request.query_params.get(name)
        if raw in (None, ""):
            values[name] = default
            continue
        try:
            value = int(raw)
        except ValueError:
            errors[name] = ["Must be an integer."]
            continue
        if value < (1 if name == "limit" else 0):
            errors[name] = ["Must be at least 1." if name == "limit" else "Must be at least 0."]
            continue
        values[name] = min(value, maximum) if maximum else value
    if errors:
        raise ValidationError("Invalid pagination parameters", details=errors)
    return values["limit"], values["offset"]


def paginated(request, queryset, serializer_class) -> Response:
    limit, offset = page_params(request)
    total = queryset.count()
    items = serializer_class(queryset[offset : offset + limit], many=True).data
    return Response({"items": items, "total": total, "limit": limit, "offset": offset})


@functools.cache
def list_schema(serializer_class):
    """An inline OpenAPI component for the list envelope of serializer_class."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    return inline_serializer(
        name=f"{serializer_class.__name__.removesuffix('Serializer')}List",
        fields={
            "items": serializer_class(many=True),
            "total": serializers.IntegerField(),
            "limit": serializers.IntegerField(),
            "offset": serializers.IntegerField(),
        },
    )
