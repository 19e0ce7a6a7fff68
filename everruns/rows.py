"""Reads of a model's rows by a written-out WHERE clause, without the ORM's query compiler on every call.

Compiling a QuerySet to SQL costs 0.2-0.4 ms of CPU per query (py-spy: a third of the web process's time
on GET session, a fifth of the worker's per-step reads). Here the SELECT list of a model (all its columns, or
some) is compiled once per process; each call appends its WHERE clause, runs it, and builds the instances
the way the ORM's iterator does (`Model.from_db` after the fields' converters), so they behave like any
other: deferred fields load on use, `save()` updates.

The WHERE clause names unqualified columns (`"session_id" = %s`); `prep` turns a value into the parameter
the field would send (a UUID is a uuid on PostgreSQL, hex text on SQLite).
"""

from dataclasses import dataclass

from django.db import connections
from django.db.models import Model


@dataclass(frozen=True)
class _Select:
    sql: str  # SELECT <columns> FROM <table>
    attnames: list[str]
    converters: list[tuple[int, list, object]]  # (position, converters, expression), as the compiler gives them


_selects: dict[tuple, _Select] = {}


def _select(model: type[Model], fields: tuple[str, ...], using: str) -> _Select:
    key = (model, fields, using, connections[using].vendor)  # the converters differ (SQLite's UUIDs, dates)
    found = _selects.get(key)
    if found is None:
        queryset = model._default_manager.using(using).order_by()
        if fields:
            queryset = queryset.only(*fields)
        compiler = queryset.query.get_compiler(using)
        sql, params = compiler.as_sql()
        if params:
            raise ValueError(f"{model.__name__}'s manager filters its rows: not a plain read")
        columns = [expression for expression, _, _ in compiler.select]
        found = _Select(
            sql=sql,
            attnames=[expression.target.attname for expression in columns],
            converters=[(pos, convs, expr) for pos, (convs, expr) in compiler.get_converters(columns).items()],
        )
        _selects[key] = found
    return found


def prep(model: type[Model], field: str, value):
    """`value` as a parameter for `field`'s column."""
    return model._meta.get_field(field).get_db_prep_value(value, connections["default"])


def fetch(
    model: type[Model], where: str, params: list, *, fields: tuple[str, ...] = (), tail: str = "", using="default"
) -> list:
    """The instances of `model` whose rows match `where` (with `params`), in the order `tail` gives
    (`ORDER BY ... LIMIT ...`, written out too); with `fields`, only those columns are read."""
    select = _select(model, fields, using)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(f"{select.sql} WHERE {where} {tail}", params)
        rows = cursor.fetchall()
    made = []
    for row in rows:
        if select.converters:
            row = list(row)
            for pos, convs, expression in select.converters:
                value = row[pos]
                for convert in convs:
                    value = convert(value, expression, connection)
                row[pos] = value
        made.append(model.from_db(using, select.attnames, row))
    return made


def fetch_one(model: type[Model], where: str, params: list, *, fields: tuple[str, ...] = ()):
    """The one instance whose row matches, or None."""
    found = fetch(model, where, params, fields=fields, tail="LIMIT 2")
    if len(found) > 1:
        raise model.MultipleObjectsReturned(f"{model.__name__}: {where}")
    return found[0] if found else None
