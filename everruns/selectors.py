"""Reads that every app's selectors share."""

import json
from typing import TypeVar

from django.db import NotSupportedError
from django.db.models import F, Lookup, Model, Q, QuerySet

from everruns.core.errors import NotFound

M = TypeVar("M", bound=Model)


def get_object(model_or_queryset: type[M] | QuerySet[M], message: str, **filters) -> M:
    """The one row that matches `filters`, or NotFound(message) (HackSoft's `get_object`, raising)."""

    queryset = model_or_queryset if isinstance(model_or_queryset, QuerySet) else model_or_queryset._default_manager
    try:
        return queryset.get(**filters)
    except queryset.model.DoesNotExist:
        raise NotFound(message) from None


class JsonListHas(Lookup):
    """The JSON list on the left has an element equal to the string on the right: a whole, case-sensitive
    match on PostgreSQL (JSON containment) and SQLite (`json_each`) alike."""

    lookup_name = "json_list_has"
    prepare_rhs = False  # the right side is the bare string, not a JSON document

    def as_sql(self, compiler, connection):
        raise NotSupportedError(f"json_list_has is written for PostgreSQL and SQLite, not {connection.vendor}")

    def as_postgresql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} @> %s::jsonb", (*params, json.dumps([self.rhs]))

    def as_sqlite(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        sql = f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.type = 'text' AND json_each.value = %s)"
        return sql, (*params, self.rhs)


def json_list_contains(field: str, value: str) -> Q:
    """`value` is an element of the JSON list in `field` (exactly: "a" matches neither "ab" nor "A")."""

    return Q(JsonListHas(F(field), value))
