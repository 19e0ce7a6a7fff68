"""The webhooks' outbox: a delivery row for each enabled webhook that wants an event, written by the event's own
statement (sessions.log) so that the event and its deliveries commit together or not at all, then a wake-up for
the workers after commit (a lost wake-up is the sweeper's: runner/webhooks).

On PostgreSQL the deliveries are one more data-modifying CTE of the event's INSERT: no extra round trip, with
webhooks or without. Elsewhere (SQLite, the embedded quick start) they are a query and an insert of their own."""

import functools

from django.utils import timezone

from everruns.celery import DELIVER_WEBHOOK_TASK
from everruns.celery import app as celery_app
from everruns.core import deferred
from everruns.core.ids import uuid7
from everruns.selectors import json_list_contains
from sessions.models import Session
from sessions.webhooks.models import Webhook, WebhookDelivery

# A UUIDv7 made by PostgreSQL 13+ (no uuidv7() before 18): the unix milliseconds over the first 48 bits of a
# random UUID, version bits turned from 4 (0100) to 7 (0111).
_UUID7_SQL = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3) from 1 for 6), "
    "52, 1), 53, 1), 'hex')::uuid"
)


@functools.cache
def deliveries_cte(event_cte: str, session_cte: str) -> str:
    """`out AS (INSERT ... RETURNING id)`: the deliveries of the event that CTE `event_cte` inserted (columns
    id, type, session_id), for the session whose agent CTE `session_cte` returned (column agent_id)."""
    w, d = Webhook._meta.db_table, WebhookDelivery._meta.db_table
    return (
        f'out AS (INSERT INTO "{d}" ("id", "webhook_id", "event_id", "event_type", "session_id", "agent_id", '
        f'"status", "attempts", "next_attempt_at", "created_at") '
        f'SELECT {_UUID7_SQL}, w."id", {event_cte}."id", {event_cte}."type", {event_cte}."session_id", '
        f"{session_cte}.\"agent_id\", 'pending', 0, now(), now() "
        f'FROM "{w}" w, {event_cte}, {session_cte} '
        f'WHERE w."enabled" AND w."events" @> jsonb_build_array({event_cte}."type") '
        f'AND (w."agent_id" IS NULL OR w."agent_id" = {session_cte}."agent_id") RETURNING "id")'
    )


DELIVERY_IDS_SQL = 'ARRAY(SELECT "id"::text FROM out)'


def deliveries_record(*, event_id, event_type: str, session_id) -> list[str]:
    """The portable path (not PostgreSQL): the same rows as `deliveries_cte`, in Python (one query when no webhook
    wants the event)."""
    hooks = list(
        Webhook.objects.filter(json_list_contains("events", event_type), enabled=True).values_list("id", "agent_id")
    )
    if not hooks:
        return []
    agent_id = Session.objects.filter(pk=session_id).values_list("agent_id", flat=True).first()
    rows = [
        WebhookDelivery(
            id=uuid7(),
            webhook_id=hook_id,
            event_id=event_id,
            event_type=event_type,
            session_id=session_id,
            agent_id=agent_id,
            next_attempt_at=timezone.now(),
        )
        for hook_id, only_agent in hooks
        if only_agent in (None, agent_id)
    ]
    WebhookDelivery.objects.bulk_create(rows)
    return [str(r.id) for r in rows]


def wake_after_commit(delivery_ids: list[str]) -> None:
    """Queue one send per delivery once the transaction commits (the rows exist for the worker by then)."""
    if delivery_ids:
        deferred.after_commit(wake, delivery_ids)


def wake(delivery_ids: list[str]) -> None:
    for delivery_id in delivery_ids:
        try:
            celery_app.send_task(DELIVER_WEBHOOK_TASK, args=[delivery_id])
        except Exception:  # the broker is away: the workers' sweep sends it (the row is committed)
            return
