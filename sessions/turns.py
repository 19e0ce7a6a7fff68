"""Every transition of a turn, in one place: create, queue, claim, renew, guard, complete, fail, re-queue.

A turn is `queued` until a worker claims it with a lease (`lease_owner`, `lease_expires_at`, on the
database's clock), `running` while the owner keeps renewing that lease, then `completed` or `failed`.
Only the lease holder writes: every write of a running turn re-checks the lease in its transaction.
A turn whose deadline passes (queued and never taken, or running with a lease nobody renews) is
re-queued by the sweeper. These are short, synchronous transactions; the runner calls them on its
database threads.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q
from django.db.models.functions import Now
from django.utils import timezone

from everruns.celery import RUN_TURN_TASK
from everruns.celery import app as celery_app
from sessions.log import SessionGone, append_event
from sessions.models import Message, Session, Turn

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker owns the turn now, or it ended or was deleted: stop without writing."""


def _from_now(seconds: float):
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def lease_expiry():
    """Now + the lease, on the database's clock (so workers on skewed machines agree)."""
    return _from_now(settings.TURN_LEASE_SECONDS)


def queue_deadline():
    """When a queued turn counts as lost (database clock): now + TURN_QUEUED_GRACE_SECONDS."""
    return _from_now(settings.TURN_QUEUED_GRACE_SECONDS)


def set_session_status(*, session_id, status: str, error: dict | None = None, turn_id=None, **fields) -> None:
    """Change the session's status and log `session.status`; call inside a transaction."""
    previous = Session.objects.select_for_update().filter(pk=session_id).values_list("status", flat=True).first()
    if previous is None:
        raise SessionGone(str(session_id))
    Session.objects.filter(pk=session_id).update(status=status, error=error, updated_at=timezone.now(), **fields)
    if previous != status or error:
        append_event(
            session_id=session_id,
            turn_id=turn_id,
            type="session.status",
            data={"status": status, "previous": previous, "error": error},
        )


# --- create and queue ---------------------------------------------------------------------------
def turn_create(*, session_id, message: Message, api_key_id: str = "") -> Turn:
    """Inside the caller's transaction (which holds the session row): a queued turn for `message`,
    the session `running`, and the turn sent to a worker once the transaction commits."""
    turn = Turn.objects.create(
        session_id=session_id,
        input_message_ids=[str(message.id)],
        lease_expires_at=queue_deadline(),
        api_key_id=api_key_id,
    )
    Message.objects.filter(pk=message.pk).update(turn=turn)
    set_session_status(session_id=session_id, status=Session.Status.RUNNING, turn_id=turn.id, active_turn=turn)
    transaction.on_commit(lambda: turn_queue(turn.id))
    return turn


def turn_queue(turn_id) -> None:
    """Hand the turn to a worker by task name. If the broker is down the turn stays queued and the
    sweeper queues it again."""
    try:
        celery_app.send_task(RUN_TURN_TASK, args=[str(turn_id)])
    except Exception as exc:
        logger.warning("could not queue turn %s: %s", turn_id, exc)


def turns_requeue_stuck(limit: int = 100) -> int:
    """Re-queue turns whose deadline passed: queued ones no worker took in time, running ones whose
    lease was not renewed. The deadline is pushed ahead and the lease released in the same
    statement, so a turn is re-queued at most once per grace period, however many workers sweep."""
    with transaction.atomic():
        ids = list(
            Turn.objects.select_for_update(skip_locked=True)
            .filter(status__in=Turn.ACTIVE)
            .filter(Q(lease_expires_at__lt=Now()) | Q(lease_expires_at__isnull=True))
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            Turn.objects.filter(pk__in=ids).update(lease_owner="", lease_expires_at=queue_deadline())
    for turn_id in ids:
        logger.warning("re-queuing stuck turn %s", turn_id)
        turn_queue(turn_id)
    return len(ids)


# --- run ------------------------------------------------------------------------------------------
def turn_claim(turn_id, owner: str) -> bool:
    """Take the turn with a fresh lease unless it ended or another owner's lease is alive.
    Emits `turn.started` the first time only (a resumed turn does not start again)."""
    with transaction.atomic():
        turn = Turn.objects.select_for_update().filter(pk=turn_id).first()
        if turn is None or turn.status not in Turn.ACTIVE:
            return False
        alive = Turn.objects.filter(pk=turn_id, lease_expires_at__gt=Now()).exists()
        if turn.status == Turn.Status.RUNNING and turn.lease_owner not in ("", owner) and alive:
            return False
        Turn.objects.filter(pk=turn_id).update(
            status=Turn.Status.RUNNING,
            lease_owner=owner,
            lease_expires_at=lease_expiry(),
            started_at=turn.started_at or timezone.now(),
        )
        if turn.started_at is None:
            append_event(
                session_id=turn.session_id,
                turn_id=turn.id,
                type="turn.started",
                data={"input_message_ids": turn.input_message_ids},
            )
        else:
            logger.info("turn %s resumed by %s", turn_id, owner)
    return True


def leases_renew(owner: str, turn_ids) -> set:
    """One statement renews every lease `owner` holds among `turn_ids`; returns the ids it still
    holds (the others were deleted, taken over or ended). A second read only when some were lost."""
    ids = list(turn_ids)
    if not ids:
        return set()
    held = Turn.objects.filter(pk__in=ids, lease_owner=owner, status=Turn.Status.RUNNING)
    if held.update(lease_expires_at=lease_expiry()) == len(ids):
        return set(ids)
    return set(held.values_list("id", flat=True))


# The statements every step of every turn runs are written out once, not built by the ORM per call:
# compiling a query cost more CPU than the round trip it makes (py-spy, README Performance).
TURN, SESSION = Turn._meta.db_table, Session._meta.db_table
GUARD_SQL = f'SELECT 1 FROM "{TURN}" WHERE "id" = %s AND "lease_owner" = %s AND "status" = %s'
COUNT_TURN_SQL = (
    f'UPDATE "{TURN}" SET "iterations" = "iterations" + 1, "input_tokens" = "input_tokens" + %s, '
    f'"output_tokens" = "output_tokens" + %s, "cost_usd" = COALESCE("cost_usd", 0) + %s WHERE "id" = %s'
)
COUNT_SESSION_SQL = (
    f'UPDATE "{SESSION}" SET "input_tokens" = "input_tokens" + %s, "output_tokens" = "output_tokens" + %s, '
    f'"cost_usd" = COALESCE("cost_usd", 0) + %s WHERE "id" = %s'
)


def _uuid(value):
    return Turn._meta.pk.get_db_prep_value(value, connection)


def turn_guard(turn_id, owner: str) -> None:
    """Inside a transaction: lock the turn and make sure `owner` still holds it."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(GUARD_SQL + lock, [_uuid(turn_id), owner, Turn.Status.RUNNING.value])
        held = cursor.fetchone() is not None
    if not held:
        raise LeaseLost(str(turn_id))


def turn_count_usage(*, turn_id, session_id, usage: dict, cost_usd: float | None) -> None:
    """Inside the guarded transaction that stores an LLM response: one more iteration, and its
    tokens and cost on the turn and the session."""
    tokens = [int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), float(cost_usd or 0.0)]
    with connection.cursor() as cursor:
        cursor.execute(COUNT_TURN_SQL, [*tokens, _uuid(turn_id)])
        cursor.execute(COUNT_SESSION_SQL, [*tokens, _uuid(session_id)])


def turn_complete(*, turn_id, session_id, owner: str, last_seen: int) -> bool:
    """End the turn unless a user message arrived since the last LLM call (then it goes on: False)."""
    with transaction.atomic():
        turn_guard(turn_id, owner)
        Session.objects.select_for_update().filter(pk=session_id).first()
        if Message.objects.filter(session_id=session_id, role=Message.Role.USER, sequence__gt=last_seen).exists():
            return False
        turn = Turn.objects.get(pk=turn_id)
        Turn.objects.filter(pk=turn_id).update(status=Turn.Status.COMPLETED, finished_at=timezone.now(), lease_owner="")
        usage = {"input_tokens": turn.input_tokens, "output_tokens": turn.output_tokens, "cost_usd": turn.cost_usd}
        append_event(
            session_id=session_id,
            turn_id=turn_id,
            type="turn.completed",
            data={"iterations": turn.iterations, "usage": usage},
        )
        set_session_status(session_id=session_id, status=Session.Status.PENDING, turn_id=turn_id, active_turn=None)
    return True


def turn_fail(*, turn_id, session_id, owner: str, code: str, message: str) -> None:
    """End the turn with `turn.failed` and the session `failed`; nothing if `owner` lost it."""
    error = {"code": str(code), "message": message}
    try:
        with transaction.atomic():
            failed = Turn.objects.filter(pk=turn_id, lease_owner=owner, status=Turn.Status.RUNNING).update(
                status=Turn.Status.FAILED, error=error, finished_at=timezone.now(), lease_owner=""
            )
            if not failed:
                return
            append_event(session_id=session_id, turn_id=turn_id, type="turn.failed", data={"error": error})
            set_session_status(
                session_id=session_id, status=Session.Status.FAILED, error=error, turn_id=turn_id, active_turn=None
            )
    except SessionGone:
        pass
