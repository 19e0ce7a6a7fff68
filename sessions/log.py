"""The session's durable, ordered log: the one way to append events and messages.

Each append takes the next per-session sequence inside the caller's transaction (the UPDATE on the
session row serialises concurrent appenders) and publishes the event to live streams after commit.
"""

import contextlib
import functools
import threading
import uuid

from django.db import connection, transaction
from django.utils import timezone

from everruns import telemetry
from everruns.core import deferred
from everruns.core.dates import rfc3339
from everruns.core.ids import uuid7
from sessions import sql
from sessions.models import Event, Message
from sessions.streams import live
from sessions.webhooks import outbox


class SessionGone(Exception):
    """The session was deleted while something was still writing to it."""


# The one encoding of an event and of a message: the live SSE payload, the `message.*` event's data and,
# through EventSerializer and MessageSerializer (which declare the same fields for the OpenAPI document),
# the REST items.
def event_to_dict(event: Event) -> dict:
    return {
        "id": str(event.id),
        "sequence": event.sequence,
        "type": event.type,
        "session_id": str(event.session_id),
        "turn_id": str(event.turn_id) if event.turn_id else None,
        "data": event.data,
        "created_at": rfc3339(event.created_at),
    }


def message_to_dict(message: Message) -> dict:
    return {
        "id": str(message.id),
        "session_id": str(message.session_id),
        "sequence": message.sequence,
        "role": message.role,
        "content": message.content,
        "controls": message.controls,
        "metadata": message.metadata,
        "created_at": rfc3339(message.created_at),
    }


def _insert(model, counter: str, fields: dict) -> tuple:
    """Create a `model` row whose `sequence` is the session's next `counter` value; returns it and, for an
    event, the ids of the webhook deliveries written with it.

    On PostgreSQL the counter's UPDATE and the INSERT are one statement (a data-modifying CTE): one
    round trip per appended row instead of two. Elsewhere (SQLite) they are two statements."""
    session_id = fields["session_id"]
    fields = {"id": uuid7(), "created_at": timezone.now(), **fields}
    if connection.vendor != "postgresql":
        sequence = sql.next_sequence(session_id=session_id, counter=counter)
        if sequence is None:
            raise SessionGone(str(session_id))
        row = model.objects.create(sequence=sequence, **fields)
        if model is not Event:
            return row, []
        return row, outbox.deliveries_record(event_id=row.id, event_type=row.type, session_id=session_id)
    inserted = sql.insert_counted(model, counter=counter, session_id=session_id, fields=fields)
    if inserted is None:
        raise SessionGone(str(session_id))
    sequence, delivery_ids = inserted
    return model(sequence=sequence, **fields), delivery_ids


def append_event(*, session_id, type: str, data: dict, turn_id=None, event_id: uuid.UUID | None = None) -> Event:
    """`event_id`: chosen up front by a step that must store its event once (it looks for it when it retries)."""
    # savepoint=False: callers are usually inside a transaction already; a savepoint would cost two
    # more round trips per event and nothing here needs a partial rollback.
    fields = {"session_id": session_id, "turn_id": turn_id, "type": type, "data": data}
    if event_id:
        fields["id"] = event_id
    with transaction.atomic(savepoint=False):
        event, delivery_ids = _insert(Event, "last_event_sequence", fields)
        _publish_after_commit(session_id, event_to_dict(event))
        outbox.wake_after_commit(delivery_ids)
        telemetry.event_appended(type=type, data=data, turn_id=turn_id)
    return event


_outbox = threading.local()


def _publish_after_commit(session_id, payload: dict) -> None:
    transaction.on_commit(functools.partial(_release, session_id, payload))


def _release(session_id, payload: dict) -> None:
    items = getattr(_outbox, "items", None)
    if items is None:
        deferred.later(functools.partial(live.publish, session_id, payload))
    else:
        items.append((session_id, payload))


@contextlib.contextmanager
def publishing_together():
    """Events committed inside this block (on this thread) are published together when it ends, in
    one Redis round trip; a runner step is one such block."""
    _outbox.items = []
    try:
        yield
    finally:
        items, _outbox.items = _outbox.items, None
        if items:
            live.publish_many(items)


def append_message(
    *,
    session_id,
    role: str,
    content: list,
    turn_id=None,
    controls: dict | None = None,
    metadata: dict | None = None,
    idempotency_key: str | None = None,
    idempotency_hash: str | None = None,
    message_id: uuid.UUID | None = None,
) -> Message:
    """Store a message and its `message.<role>` event together."""
    with transaction.atomic(savepoint=False):
        fields = {
            "session_id": session_id,
            "turn_id": turn_id,
            "role": role,
            "content": content,
            "controls": controls,
            "metadata": metadata,
            "idempotency_key": idempotency_key,
            "idempotency_hash": idempotency_hash,
        }
        if message_id:
            fields["id"] = message_id
        message, _ = _insert(Message, "last_message_sequence", fields)
        append_event(
            session_id=session_id, turn_id=turn_id, type=f"message.{role}", data={"message": message_to_dict(message)}
        )
    return message
