"""The list envelope: {items, total, limit, offset}."""

import functools
import re

from drf_spectacular.utils import OpenApiParameter, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from everruns.errors import ValidationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10**9  # beyond any real list, and well inside a database bigint


def page_params(request) -> tuple[int, int]:
    errors = {}
    values = {}
    for name, default, minimum in (("limit", DEFAULT_LIMIT, 1), ("offset", 0, 0)):
        given = request.query_params.getlist(name)
        if not given:
            values[name] = default
            continue
        if len(given) > 1:
            errors[name] = ["Give it once."]
        elif not re.fullmatch(r"-?[0-9]{1,20}", given[0]):
            errors[name] = ["Must be an integer."]
        elif int(given[0]) < minimum:
            errors[name] = [f"Must be at least {minimum}."]
        elif name == "offset" and int(given[0]) > MAX_OFFSET:
            errors[name] = [f"Must be at most {MAX_OFFSET}."]
        else:
            values[name] = min(int(given[0]), MAX_LIMIT) if name == "limit" else int(given[0])
    if errors:
        raise ValidationError("Invalid pagination parameters", details=errors)
    return values["limit"], values["offset"]


def paginated(request, queryset, serializer_class) -> Response:
    limit, offset = page_params(request)
    total = queryset.count()
    items = serializer_class(queryset[offset : offset + limit], many=True).data
    return Response({"items": items, "total": total, "limit": limit, "offset": offset})


def page_parameters() -> list:
    """OpenAPI parameters of every list route."""

    return [
        OpenApiParameter(
            "limit", {"type": "integer", "minimum": 1}, description="Default 50; above 500 counts as 500."
        ),
        OpenApiParameter("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}),
    ]


@functools.cache
def list_schema(serializer_class):
    """An inline OpenAPI component for the list envelope of serializer_class."""

    envelope = inline_serializer(
        name=f"{serializer_class.__name__.removesuffix('Serializer')}List",
        fields={
            "items": serializer_class(many=True),
            "total": serializers.IntegerField(),
            "limit": serializers.IntegerField(),
            "offset": serializers.IntegerField(),
        },
    )
    # The envelope is one object: without this, drf-spectacular documents a ViewSet's `list` as an array of them.
    extend_schema_serializer(many=False)(type(envelope))
    return envelope
