"""A turn's lifecycle: create, queue, claim, renew, guard (the one way a step is stored), count usage,
complete, fail, re-queue. Approvals are in approvals.py, cancel and interrupt in cancel.py, the wake-ups to the
worker that holds a turn in control.py; the package's __init__ is their one public face (`sessions.turns`).

A turn is `queued` until a worker claims it with a lease (`lease_owner`, `lease_expires_at`, on the
database's clock), `running` while the owner keeps renewing that lease, `waiting` (no lease, no
worker) while a tool call awaits approval, then `completed`, `failed` or `cancelled`. Only the lease
holder writes: every write of a running turn re-checks the lease in its transaction. A turn whose
deadline passes (queued and never taken, or running with a lease nobody renews) is re-queued by the
sweeper. A cancel is stored on the turn first: whoever holds the turn ends it (the API when no worker
holds it, else the worker, woken through sessions.turns.control), exactly once under the turn's row lock.
These are short, synchronous transactions; the runner calls them on its database threads.
"""

import logging
import uuid
from contextlib import contextmanager
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q
from django.db.models.functions import Now
from django.utils import timezone

from everruns.celery import RUN_TURN_TASK
from everruns.celery import app as celery_app
from everruns.core import deferred, rows
from everruns.telemetry import tracing
from sessions import sql
from sessions.log import SessionGone, append_event, append_message
from sessions.models import Message, Session, Turn

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker owns the turn now, or it ended or was deleted: stop without writing."""


class CancelRequested(Exception):
    """The turn's cancel is stored: its holder ends it (turn_cancel) instead of writing the step."""


FAILED_TOOL_ERROR = "failed: the turn failed before this tool call finished"


def _from_now(seconds: float):
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def lease_expiry():
    """Now + the lease, on the database's clock (so workers on skewed machines agree)."""
    return _from_now(settings.TURN_LEASE_SECONDS)


def turn_count_of_key(api_key_id: str) -> int:
    """The turns started for an API key that have not ended (MAX_TURNS_PER_KEY)."""
    return sql.active_turns_of_key(api_key_id=api_key_id)


def queue_deadline():
    """When a queued turn counts as lost (database clock): now + TURN_QUEUED_GRACE_SECONDS."""
    return _from_now(settings.TURN_QUEUED_GRACE_SECONDS)


def set_session_status(
    *, session_id, status: str, error: dict | None = None, turn_id=None, previous: str | None = None, **fields
) -> None:
    """Change the session's status and log `session.status`; call inside a transaction. `previous`: the status,
    when the caller holds the session's row lock and read it in this transaction (saves reading it again)."""
    if previous is None:
        locked = rows.by_pk(Session, session_id, fields=("status",), lock=True)
        if locked is None:
            raise SessionGone(str(session_id))
        previous = locked.status
    rows.update(Session, session_id, status=status, error=error, updated_at=timezone.now(), **fields)
    if previous != status or error:
        append_event(
            session_id=session_id,
            turn_id=turn_id,
            type="session.status",
            data={"status": status, "previous": previous, "error": error},
        )


# --- create and queue ---------------------------------------------------------------------------
def turn_create(
    *,
    session_id,
    message: Message | None,
    api_key_id: str = "",
    client_tools: list | None = None,
    session_status: str | None = None,
    answered_sequence: int = 0,
) -> Turn:
    """Inside the caller's transaction (which holds the session row): a queued turn for `message` (a user
    message, or a client's tool result; None: a turn that compacts the context, POST .../compact, with every
    message up to `answered_sequence` answered), the session `running`, and the turn sent to a worker once the
    transaction commits. `client_tools`: front-end tools offered to the model for this turn. `session_status`:
    the session's status as the caller read it under its lock, if it did."""
    turn = rows.insert(
        Turn(
            session_id=session_id,
            input_message_ids=[str(message.id)] if message else [],
            lease_expires_at=queue_deadline(),
            api_key_id=api_key_id,
            client_tools=client_tools or [],
            answered_sequence=answered_sequence,
            trace_context=tracing.trace_context(),
        )
    )
    if message:
        rows.update(Message, message.pk, turn=turn)
    set_session_status(
        session_id=session_id, status=Session.Status.RUNNING, turn_id=turn.id, active_turn=turn, previous=session_status
    )
    deferred.after_commit(turn_queue, turn.id)
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
class Claim(NamedTuple):
    session_id: uuid.UUID
    resumed: bool  # a worker had started the turn before (it may have made calls it never stored)


def turn_claim(turn_id, owner: str) -> Claim | None:
    """Take the turn with a fresh lease unless it ended or another owner's lease is alive; None when not
    taken. `turn.started` is emitted the first time only."""
    with transaction.atomic():
        turn = rows.by_pk(Turn, turn_id, fields=CLAIM_FIELDS, lock=True)
        if turn is None or turn.status not in Turn.ACTIVE:
            return None
        if turn.status == Turn.Status.RUNNING and turn.lease_owner not in ("", owner) and lease_alive(turn):
            return None
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
            return Claim(turn.session_id, resumed=False)
        logger.info("turn %s resumed by %s", turn_id, owner)
    return Claim(turn.session_id, resumed=True)


CLAIM_FIELDS = ("id", "session_id", "status", "lease_owner", "started_at", "input_message_ids")


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


def turn_signals(turn_ids) -> dict:
    """The stored cancel and interrupt requests of `turn_ids`: {turn_id: (cancel requested, interrupt
    sequence)}, only for turns that have one. The heartbeat's backstop for a lost wake-up."""
    rows = Turn.objects.filter(pk__in=list(turn_ids)).filter(
        Q(cancel_requested_at__isnull=False) | Q(interrupt_sequence__gt=0)
    )
    return {
        turn_id: (cancelled is not None, sequence)
        for turn_id, cancelled, sequence in rows.values_list("id", "cancel_requested_at", "interrupt_sequence")
    }


@contextmanager
def turn_step(turn_id, owner: str, *, cancelling: bool = False):
    """The one way a worker stores a step of a running turn: a transaction that first locks the turn and
    checks that `owner` still holds its lease and no cancel is stored (`turn_guard`), then runs the step's
    writes. LeaseLost / CancelRequested leave nothing of the step behind."""
    with transaction.atomic():
        turn_guard(turn_id, owner, cancelling=cancelling)
        yield


def turn_guard(turn_id, owner: str, *, cancelling: bool = False) -> None:
    """Inside a transaction: lock the turn and make sure `owner` still holds it, and that no cancel
    is stored (unless this is the cancel being carried out)."""
    row = sql.turn_lease_row(turn_id=turn_id, owner=owner, lock=True)
    if row is None:
        raise LeaseLost(str(turn_id))
    if row[0] and not cancelling:
        raise CancelRequested(str(turn_id))


def turn_count_usage(*, turn_id, session_id, usage: dict, cost_usd: float | None, answered_sequence: int) -> None:
    """Inside the guarded transaction that stores an LLM response: one more iteration, its tokens and
    cost on the turn and the session, and the newest message the call was given."""
    sql.count_call(
        turn_id=turn_id, session_id=session_id, usage=usage, cost_usd=cost_usd, answered_sequence=answered_sequence
    )


def turn_count_abandoned(*, turn_id, session_id, usage: dict) -> None:
    """Inside a guarded transaction: a call abandoned mid-stream (interrupted, cancelled) is an LLM call of
    the turn (it counts toward max_iterations) and its estimated usage counts on the turn and the session."""
    sql.count_call(turn_id=turn_id, session_id=session_id, usage=usage, cost_usd=usage.get("cost_usd"))


def turn_count_compaction(*, turn_id, session_id, usage: dict, cost_usd: float | None) -> None:
    """Inside the guarded transaction that stores a `context.compacted`: its summary calls' tokens and cost on
    the turn and the session (toward the budgets), and no iteration (they are no step of the conversation)."""
    sql.count_compaction(turn_id=turn_id, session_id=session_id, usage=usage, cost_usd=cost_usd)


def turn_complete(*, turn_id, session_id, owner: str, last_seen: int, client_calls: list | None = None) -> bool:
    """End the turn unless a user message arrived since the last LLM call (then it goes on: False).
    `client_calls`: calls of front-end tools the client is to answer (`turn.completed.pending_tool_calls`)."""
    with turn_step(turn_id, owner):
        # The turn's row lock is enough: a message for this session takes it first too (lock_open_turn).
        # A user message, or a front-end's tool result, came since the last LLM call: the model goes on.
        news = [Message.Role.USER.value, Message.Role.TOOL_RESULT.value]
        if sql.news_since(session_id=session_id, roles=news, after=last_seen):
            return False
        counted = sql.turn_completed(turn_id=turn_id, finished_at=timezone.now())
        iterations = counted.pop("iterations")
        usage = counted
        pending = {"pending_tool_calls": client_calls} if client_calls else {}
        append_event(
            session_id=session_id,
            turn_id=turn_id,
            type="turn.completed",
            data={"iterations": iterations, "usage": usage, **pending},
        )
        set_session_status(session_id=session_id, status=Session.Status.PENDING, turn_id=turn_id, active_turn=None)
    return True


def turn_fail(*, turn_id, session_id, owner: str, code: str, message: str, details: dict | None = None) -> None:
    """End the turn with `turn.failed` and the session `failed`; nothing if `owner` lost it."""
    error = {"code": str(code), "message": message}
    if details:
        error["details"] = details
    try:
        with transaction.atomic():
            turn = (
                Turn.objects.select_for_update()
                .filter(pk=turn_id, lease_owner=owner, status=Turn.Status.RUNNING)
                .first()
            )
            if turn is None:
                return
            session_id = turn.session_id
            close_unanswered(turn, FAILED_TOOL_ERROR, denial="the turn failed")
            Turn.objects.filter(pk=turn_id).update(
                status=Turn.Status.FAILED, error=error, finished_at=timezone.now(), lease_owner=""
            )
            append_event(session_id=session_id, turn_id=turn_id, type="turn.failed", data={"error": error})
            set_session_status(
                session_id=session_id, status=Session.Status.FAILED, error=error, turn_id=turn_id, active_turn=None
            )
    except SessionGone:
        pass


def resolve_approval(turn: Turn, tool_call_id: str, *, approved: bool, reason: str | None) -> None:
    """Inside a transaction holding the turn's row: decide one pending call."""
    turn.approvals[tool_call_id].update(status="approved" if approved else "denied", reason=reason)
    Turn.objects.filter(pk=turn.pk).update(approvals=turn.approvals)
    append_event(
        session_id=turn.session_id,
        turn_id=turn.pk,
        type="tool.approval_resolved",
        data={"tool_call_id": tool_call_id, "approved": approved, "reason": reason},
    )


_UNREAD = object()


def lock_open_turn(session_id, active_turn_id=_UNREAD) -> Turn | None:
    """Inside a transaction, before the session's row is locked: lock the session's open turn (turn
    first, then session, as every worker step does, so the two never deadlock). `active_turn_id`: the
    session's, when the caller has just read it."""
    active_id = active_turn_id
    if active_id is _UNREAD:
        active_id = Session.objects.filter(pk=session_id).values_list("active_turn_id", flat=True).first()
    if active_id is None:
        return None
    return Turn.objects.select_for_update().filter(pk=active_id, status__in=Turn.OPEN).first()


def lease_alive(turn: Turn) -> bool:
    return Turn.objects.filter(pk=turn.pk, lease_expires_at__gt=Now()).exists()


def close_unanswered(turn: Turn, error: str, *, denial: str) -> None:
    """Inside a transaction holding the turn's row, as it ends: every call of its last response without a
    result gets `error` as its result (so no later turn runs it), and pending approvals are denied."""
    session_id = turn.session_id
    last = (
        Message.objects.filter(session_id=session_id, turn_id=turn.pk, role=Message.Role.ASSISTANT)
        .order_by("-sequence")
        .first()
    )
    if last is None:
        return
    calls = [p for p in last.content if p.get("type") == "tool_call"]
    if not calls:
        return
    answered = {
        p.get("tool_call_id")
        for m in Message.objects.filter(
            session_id=session_id, role=Message.Role.TOOL_RESULT, sequence__gt=last.sequence
        ).only("content")
        for p in m.content
    }
    for call in calls:
        if call["id"] in answered:
            continue
        if (turn.approvals or {}).get(call["id"], {}).get("status") == "pending":
            resolve_approval(turn, call["id"], approved=False, reason=denial)
        part = {"type": "tool_result", "tool_call_id": call["id"], "name": call["name"], "result": None, "error": error}
        append_message(session_id=session_id, turn_id=turn.pk, role=Message.Role.TOOL_RESULT, content=[part])
