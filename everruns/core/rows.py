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
from django.db.models.sql import Query

from everruns.core import prepared


@dataclass(frozen=True)
class _Part:
    """One model's columns in the select list: the slice of the row, their attnames, how to attach it."""

    model: type[Model]
    start: int
    end: int
    attnames: list[str]
    setters: tuple = ()  # a related part: (local_setter, remote_setter) from the compiler's klass_info


@dataclass(frozen=True)
class _Select:
    sql: str  # SELECT <columns> FROM <table> [JOIN <related table>]
    parts: list[_Part]  # the model's own columns first, then the related model's
    converters: list[tuple[int, list, object]]  # (position, converters, expression), as the compiler gives them


_selects: dict[tuple, _Select] = {}


def _select(model: type[Model], fields: tuple[str, ...], related: str | None, using: str) -> _Select:
    key = (model, fields, related, using, connections[using].vendor)  # the converters differ (SQLite's UUIDs, dates)
    found = _selects.get(key)
    if found is None:
        queryset = model._default_manager.using(using).order_by()
        if fields:
            queryset = queryset.only(*fields)
        if related:
            queryset = queryset.select_related(related)
        compiler = queryset.query.get_compiler(using)
        sql, params = compiler.as_sql()
        if params:
            raise ValueError(f"{model.__name__}'s manager filters its rows: not a plain read")
        columns = [expression for expression, _, _ in compiler.select]
        infos = [(compiler.klass_info, ())] + [
            (info, (info["local_setter"], info["remote_setter"]))
            for info in compiler.klass_info.get("related_klass_infos", [])
        ]
        parts = []
        for info, setters in infos:
            start, end = info["select_fields"][0], info["select_fields"][-1] + 1
            attnames = [expression.target.attname for expression in columns[start:end]]
            parts.append(_Part(info["model"], start, end, attnames, setters))
        found = _Select(
            sql=sql,
            parts=parts,
            converters=[(pos, convs, expr) for pos, (convs, expr) in compiler.get_converters(columns).items()],
        )
        _selects[key] = found
    return found


def prep(model: type[Model], field: str, value):
    """`value` as a parameter for `field`'s column."""
    return model._meta.get_field(field).get_db_prep_value(value, connections["default"])


def fetch(
    model: type[Model],
    where: str,
    params: list,
    *,
    fields: tuple[str, ...] = (),
    related: str | None = None,
    tail: str = "",
    lock: bool = False,
    using="default",
) -> list:
    """The instances of `model` whose rows match `where` (with `params`), in the order `tail` gives
    (`ORDER BY ... LIMIT ...`, written out too); with `fields`, only those columns are read; with `related`
    (a foreign key's name), its row comes in the same query, as select_related gives it. With `related`,
    `where` qualifies its columns ("table"."column"): both tables have an "id". `lock`: FOR UPDATE, where the
    database has it (inside a transaction)."""
    select = _select(model, fields, related, using)
    connection = connections[using]
    if lock and connection.features.has_select_for_update:
        tail += " FOR UPDATE"
    with connection.cursor() as cursor:
        prepared.execute(cursor, f"{select.sql} WHERE {where} {tail}", params)
        rows = cursor.fetchall()
    made = []
    main, *joined = select.parts
    for row in rows:
        if select.converters:
            row = list(row)
            for pos, convs, expression in select.converters:
                value = row[pos]
                for convert in convs:
                    value = convert(value, expression, connection)
                row[pos] = value
        instance = model.from_db(using, main.attnames, row[main.start : main.end])
        for part in joined:
            values = row[part.start : part.end]
            missing = values[part.attnames.index(part.model._meta.pk.attname)] is None  # a LEFT JOIN found no row
            other = None if missing else part.model.from_db(using, part.attnames, values)
            local_setter, remote_setter = part.setters
            local_setter(instance, other)
            if other is not None:
                remote_setter(other, instance)
        made.append(instance)
    return made


def fetch_one(model: type[Model], where: str, params: list, **options):
    """The one instance whose row matches, or None."""
    found = fetch(model, where, params, tail="LIMIT 2", **options)
    if len(found) > 1:
        raise model.MultipleObjectsReturned(f"{model.__name__}: {where}")
    return found[0] if found else None


def by_pk(model: type[Model], pk, **options):
    """The instance whose primary key is `pk`, or None (options as for `fetch`)."""
    ops = connections[options.get("using", "default")].ops
    column = f"{ops.quote_name(model._meta.db_table)}.{ops.quote_name(model._meta.pk.column)}"
    return fetch_one(model, f"{column} = %s", [prep(model, model._meta.pk.name, pk)], **options)


def update(model: type[Model], pk, using: str = "default", **values) -> int:
    """Set `values` (field names; a related instance stands for its key) on the row whose primary key is `pk`, in
    one written-out UPDATE; the number of rows changed."""
    connection = connections[using]
    quote = connection.ops.quote_name
    columns, params = [], []
    for name, value in values.items():
        field = model._meta.get_field(name)
        columns.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value.pk if isinstance(value, Model) else value, connection))
    params.append(prep(model, model._meta.pk.name, pk))
    sql = f"UPDATE {quote(model._meta.db_table)} SET {', '.join(columns)} WHERE {quote(model._meta.pk.column)} = %s"
    with connection.cursor() as cursor:
        prepared.execute(cursor, sql, params)
        return cursor.rowcount


_inserts: dict[tuple, tuple[str, list[str], list]] = {}


def insert(instance: Model, using: str = "default") -> Model:
    """Store a new `instance` (defaults and `auto_now_add` filled in as `save()` would) with a written-out
    INSERT of every concrete column; the instance is then saved, as after `Model.objects.create`. A value that
    is an expression (a time on the database's clock) is compiled in place of its placeholder."""
    model = type(instance)
    connection = connections[using]
    key = (model, using, connection.vendor)
    statement = _inserts.get(key)
    if statement is None:
        fields = [f for f in model._meta.concrete_fields if not f.generated]
        table = connection.ops.quote_name(model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        statement = (f"INSERT INTO {table} ({columns}) VALUES ", ["%s"] * len(fields), fields)
        _inserts[key] = statement
    head, marks, fields = statement
    params = []
    for i, field in enumerate(fields):
        value = field.pre_save(instance, True)
        if hasattr(value, "resolve_expression"):
            marks = list(marks) if marks is statement[1] else marks
            query = Query(model)
            expression = value.resolve_expression(query, allow_joins=False, for_save=True)
            marks[i], expression_params = query.get_compiler(using=using).compile(expression)
            params.extend(expression_params)
        else:
            params.append(field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        prepared.execute(cursor, f"{head}({', '.join(marks)})", params)
    instance._state.adding, instance._state.db = False, using
    return instance
