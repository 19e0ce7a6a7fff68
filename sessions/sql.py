"""The sessions app's written-out SQL, in one place, behind functions with keyword filters: the statements
every turn step and every hot request runs. Compiling an ORM query cost more CPU than the round trip it makes
(py-spy: a third of GET session, a fifth of a worker's steps), so these are written once; the ORM models stay
the schema and the source of every statement's table and column names (and of the reads' column lists,
through everruns/core/rows.py). Everything else uses the ORM."""

import functools

from django.db import connection

from everruns.core import prepared, rows
from sessions.models import Event, Message, Session, Turn
from sessions.webhooks import outbox

TURN, SESSION, MESSAGE = Turn._meta.db_table, Session._meta.db_table, Message._meta.db_table

GUARD = (
    f'SELECT "cancel_requested_at" IS NOT NULL FROM "{TURN}" WHERE "id" = %s AND "lease_owner" = %s AND "status" = %s'
)
COUNT_TURN = (
    f'UPDATE "{TURN}" SET "iterations" = "iterations" + 1, "input_tokens" = "input_tokens" + %s, '
    f'"output_tokens" = "output_tokens" + %s, "cost_usd" = COALESCE("cost_usd", 0) + %s, "answered_sequence" = %s '
    'WHERE "id" = %s'
)
COUNT_SESSION = (
    f'UPDATE "{SESSION}" SET "input_tokens" = "input_tokens" + %s, "output_tokens" = "output_tokens" + %s, '
    f'"cost_usd" = COALESCE("cost_usd", 0) + %s WHERE "id" = %s'
)
COUNT_ABANDONED = (
    f'UPDATE "{TURN}" SET "iterations" = "iterations" + 1, "input_tokens" = "input_tokens" + %s, '
    f'"output_tokens" = "output_tokens" + %s, "cost_usd" = COALESCE("cost_usd", 0) + %s WHERE "id" = %s'
)
COUNT_COMPACTION = (
    f'UPDATE "{TURN}" SET "input_tokens" = "input_tokens" + %s, "output_tokens" = "output_tokens" + %s, '
    f'"cost_usd" = COALESCE("cost_usd", 0) + %s WHERE "id" = %s'
)
NEWS = f'SELECT 1 FROM "{MESSAGE}" WHERE "session_id" = %s AND "role" IN (%s, %s) AND "sequence" > %s LIMIT 1'
COMPLETE = (
    f'UPDATE "{TURN}" SET "status" = %s, "finished_at" = %s, "lease_owner" = \'\' WHERE "id" = %s '
    'RETURNING "iterations", "input_tokens", "output_tokens", "cost_usd"'
)


def _uuid(value):
    return Turn._meta.pk.get_db_prep_value(value, connection)


def _one(sql: str, params: list):
    with connection.cursor() as cursor:
        prepared.execute(cursor, sql, params)
        return cursor.fetchone()


# --- turns ------------------------------------------------------------------------------------------
def turn_lease_row(*, turn_id, owner: str, lock: bool):
    """(cancel requested,) of the running turn `owner` holds, its row locked when `lock`; None if not held."""
    suffix = " FOR UPDATE" if lock and connection.features.has_select_for_update else ""
    return _one(GUARD + suffix, [_uuid(turn_id), owner, Turn.Status.RUNNING.value])


def active_turns_of_key(*, api_key_id: str) -> int:
    """The turns started for an API key that have not ended (an index-only scan of the active turns' index)."""
    active = [status.value for status in Turn.ACTIVE]
    marks = ", ".join(["%s"] * len(active))
    sql = f'SELECT COUNT(*) FROM "{TURN}" WHERE "api_key_id" = %s AND "status" IN ({marks})'
    return _one(sql, [api_key_id, *active])[0]


def _tokens(usage: dict, cost_usd) -> list:
    return [int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), float(cost_usd or 0.0)]


def count_call(*, turn_id, session_id, usage: dict, cost_usd, answered_sequence: int | None = None) -> None:
    """One more LLM call of the turn, with its tokens and cost on the turn and the session; `answered_sequence`
    (a stored answer's): the newest message the call was given. Without it the call was abandoned mid-stream."""
    tokens = _tokens(usage, cost_usd)
    with connection.cursor() as cursor:
        if answered_sequence is None:
            prepared.execute(cursor, COUNT_ABANDONED, [*tokens, _uuid(turn_id)])
        else:
            prepared.execute(cursor, COUNT_TURN, [*tokens, answered_sequence, _uuid(turn_id)])
        prepared.execute(cursor, COUNT_SESSION, [*tokens, _uuid(session_id)])


def count_compaction(*, turn_id, session_id, usage: dict, cost_usd) -> None:
    """A compaction's summary calls: tokens and cost on the turn and the session, no iteration."""
    tokens = _tokens(usage, cost_usd)
    with connection.cursor() as cursor:
        prepared.execute(cursor, COUNT_COMPACTION, [*tokens, _uuid(turn_id)])
        prepared.execute(cursor, COUNT_SESSION, [*tokens, _uuid(session_id)])


def news_since(*, session_id, roles: list[str], after: int) -> bool:
    """Whether the session has a message of one of these two roles after sequence `after`."""
    return _one(NEWS, [_uuid(session_id), *roles, after]) is not None


def turn_completed(*, turn_id, finished_at) -> dict:
    """Mark the turn completed; its usage as counted: {iterations, input_tokens, output_tokens, cost_usd}."""
    at = Turn._meta.get_field("finished_at").get_db_prep_save(finished_at, connection)
    iterations, input_tokens, output_tokens, cost_usd = _one(
        COMPLETE, [Turn.Status.COMPLETED.value, at, _uuid(turn_id)]
    )
    return {
        "iterations": iterations,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd,
    }


# --- messages ---------------------------------------------------------------------------------------
def messages_of(*, session_id) -> list[Message]:
    """Every message of the session, in order."""
    return rows.fetch(
        Message, '"session_id" = %s', [rows.prep(Message, "session", session_id)], tail='ORDER BY "sequence"'
    )


def message_by_idempotency_key(*, session_id, key: str) -> Message | None:
    params = [rows.prep(Message, "session", session_id), key]
    return rows.fetch_one(Message, '"session_id" = %s AND "idempotency_key" = %s', params)


# --- the log's append -------------------------------------------------------------------------------
def next_sequence(*, session_id, counter: str) -> int | None:
    """Bump and read the session's counter in one statement (PostgreSQL, and SQLite >= 3.35); None: no session."""
    column, pk = Session._meta.get_field(counter).column, Session._meta.pk
    sql = f'UPDATE "{SESSION}" SET "{column}" = "{column}" + 1 WHERE "{pk.column}" = %s RETURNING "{column}"'
    row = _one(sql, [pk.get_db_prep_value(session_id, connection)])
    return row[0] if row else None


@functools.cache
def _insert_statement(model, counter: str, names: tuple[str, ...]) -> tuple[str, list]:
    """The data-modifying CTE of `insert_counted` for these fields, and the fields, built once per shape. An
    event's statement also writes its webhook deliveries (sessions.webhooks.outbox) and returns their ids."""
    column = Session._meta.get_field(counter).column
    model_fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(f'"{field.column}"' for field in model_fields)
    casts = ", ".join(f"%s::{field.db_type(connection)}" for field in model_fields)
    update = f'UPDATE "{SESSION}" SET "{column}" = "{column}" + 1 WHERE "id" = %s RETURNING "{column}"'
    insert = f'INSERT INTO "{model._meta.db_table}" ("sequence", {columns}) SELECT seq."{column}", {casts} FROM seq'
    if model is not Event:
        return f'WITH seq AS ({update}) {insert} RETURNING "sequence"', model_fields
    sql = (
        f'WITH seq AS ({update}, "agent_id"), ins AS ({insert} RETURNING "id", "sequence", "type", "session_id"), '
        f'{outbox.deliveries_cte("ins", "seq")} SELECT ins."sequence", {outbox.DELIVERY_IDS_SQL} FROM ins'
    )
    return sql, model_fields


def insert_counted(model, *, counter: str, session_id, fields: dict) -> tuple[int, list] | None:
    """PostgreSQL: the session's counter's UPDATE and the row's INSERT in one statement (one round trip per
    appended row instead of two); (the row's sequence, the webhook deliveries written with an event), or None
    when the session is gone."""
    sql, model_fields = _insert_statement(model, counter, tuple(fields))
    values = zip(model_fields, fields.values(), strict=True)
    params = [field.get_db_prep_save(value, connection) for field, value in values]
    row = _one(sql, [Session._meta.pk.get_db_prep_value(session_id, connection), *params])
    if row is None:
        return None
    return row[0], (row[1] if len(row) > 1 else [])
