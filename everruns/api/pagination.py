"""The list envelope: {items, data, total, limit, offset}; `data` is the same array as `items`, the name
upstream Everruns clients read (API.md, "Conventions").

A page holds at most `limit` items and, past its first item, at most MAX_PAGE_BYTES of JSON (the array twice): a page
of large items (a message may be 4 MiB) stops early. `items` may then be shorter than `limit` although
`offset + len(items) < total`; a client pages on with `offset + len(items)`, as at any page.
"""

import contextlib
import functools
import json
import re

from django.conf import settings
from django.db import connections, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from everruns.core.errors import ValidationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10**9  # beyond any real list, and well inside a database bigint
# Rows are read this many at a time, so a page of large items never holds more than one such batch it
# will not send.
FETCH_ROWS = 16


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


def json_size(item) -> int:
    """Bytes of `item` as the JSON renderer writes it (compact, UTF-8)."""
    return len(json.dumps(item, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":")).encode())


def bounded_items(rows, to_item, max_bytes: int, size=json_size) -> tuple[list, bool]:
    """`to_item(row)` for each row until the items pass `max_bytes` (`size(item)` each; the first item always
    goes in); and whether every row went in."""
    items, total = [], 0
    for row in rows:
        item = to_item(row)
        total += size(item)
        if items and total > max_bytes:
            return items, False
        items.append(item)
    return items, True


@contextlib.contextmanager
def streamed(queryset):
    """The queryset's rows, read FETCH_ROWS at a time while they are used: reading stops where the use stops.

    PostgreSQL reads a server-side cursor lazily only inside a transaction (outside one, it first copies the
    whole result for the cursor). SQLite steps through a result as it is read anyway, and a transaction there
    (BEGIN IMMEDIATE in our settings) would take the write lock."""
    lazy = connections[queryset.db].vendor == "postgresql"
    with transaction.atomic(using=queryset.db) if lazy else contextlib.nullcontext():
        rows = queryset.iterator(chunk_size=FETCH_ROWS)
        try:
            yield rows
        finally:
            rows.close()  # the cursor of rows left unread, now, while its connection and transaction are open


def paginated(request, queryset, serializer_class) -> Response:
    limit, offset = page_params(request)
    total = queryset.count()
    with streamed(queryset[offset : offset + limit]) as rows:
        # Each item is sent twice (`items` and `data`): it counts twice against the page's bytes.
        items, _ = bounded_items(
            rows, serializer_class().to_representation, settings.MAX_PAGE_BYTES, size=lambda item: 2 * json_size(item)
        )
    return Response(envelope(items, total=total, limit=limit, offset=offset))


def envelope(items: list, *, total: int, limit: int, offset: int) -> dict:
    """The one shape of every list: the same array under `items` (the reference client) and `data` (upstream)."""
    return {"items": items, "data": items, "total": total, "limit": limit, "offset": offset}


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
            "data": serializer_class(many=True, help_text="The same array as `items` (what upstream clients read)."),
            "total": serializers.IntegerField(),
            "limit": serializers.IntegerField(),
            "offset": serializers.IntegerField(),
        },
    )
    # The envelope is one object: without this, drf-spectacular documents a ViewSet's `list` as an array of them.
    extend_schema_serializer(many=False)(type(envelope))
    return envelope
