"""Cancel and interrupt: a cancel is stored on the turn first; whoever holds the turn ends it (the API when no
worker holds it, else the worker, woken through control.py), exactly once under the turn's row lock. An
interrupt abandons the worker's LLM call in flight."""

import time

from django.db import transaction
from django.utils import timezone

from everruns.core.errors import Conflict, NotFound
from sessions.log import append_event, append_message
from sessions.models import Message, Session, Turn
from sessions.turns import control
from sessions.turns.lifecycle import (
    close_unanswered,
    lease_alive,
    lock_open_turn,
    set_session_status,
    turn_count_abandoned,
    turn_step,
)

CANCELLED_TOOL_ERROR = "cancelled: the turn was cancelled before this tool call finished"
CANCEL_WAIT_SECONDS = 2.0


def turn_interrupt_request(*, turn: Turn, sequence: int) -> None:
    """Inside the caller's transaction: message `sequence` interrupts the turn's in-flight LLM call."""
    Turn.objects.filter(pk=turn.pk).update(interrupt_sequence=sequence)
    transaction.on_commit(lambda: control.send(turn.pk, "interrupt", sequence))


def turn_cancel_request(*, session_id, reason: str | None = None) -> Session:
    """Cancel the session's open turn. Stored first; a queued or waiting turn, or one whose worker died,
    ends here and now; a running one is ended by its worker, woken at once (we wait a moment for it so
    the answer usually shows the session `pending`). Nothing to cancel -> Conflict."""
    with transaction.atomic():
        turn = lock_open_turn(session_id)
        session = Session.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            raise NotFound("Session not found")
        if turn is None or session.active_turn_id != turn.pk:
            raise Conflict("Nothing to cancel: the session has no running, queued or waiting turn")
        Turn.objects.filter(pk=turn.pk).update(cancel_requested_at=timezone.now(), cancel_reason=reason)
        held = turn.status == Turn.Status.RUNNING and turn.lease_owner and lease_alive(turn)
        if not held:
            _finish_cancel(turn, reason=reason)
        else:
            transaction.on_commit(lambda: control.send(turn.pk, "cancel"))
    if held:
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while time.monotonic() < deadline and Turn.objects.filter(pk=turn.pk, status__in=Turn.OPEN).exists():
            time.sleep(0.02)
    return Session.objects.get(pk=session_id)


def turn_cancel(
    *,
    turn_id,
    session_id,
    owner: str,
    partial_text: str | None = None,
    model: str | None = None,
    message_id=None,
    usage: dict | None = None,
) -> bool:
    """The worker holding the turn carries out its stored cancel: the partial assistant text of the call in
    flight is kept, and that call's estimated `usage` counted."""
    with turn_step(turn_id, owner, cancelling=True):
        turn = Turn.objects.get(pk=turn_id)
        if message_id is not None and Message.objects.filter(pk=message_id).exists():
            partial_text, usage = None, None  # stored and counted already (an interrupt kept it)
        if usage:
            turn_count_abandoned(turn_id=turn_id, session_id=turn.session_id, usage=usage)
        _finish_cancel(
            turn, reason=turn.cancel_reason, partial_text=partial_text, model=model, message_id=message_id, usage=usage
        )
    return True


def _finish_cancel(
    turn: Turn,
    *,
    reason: str | None,
    partial_text: str | None = None,
    model: str | None = None,
    message_id=None,
    usage: dict | None = None,
) -> None:
    """Inside a transaction holding the turn's row: calls left without a result get the cancelled
    error (so no later turn runs them), pending approvals are denied, `turn.cancelled`, session `pending`."""
    close_unanswered(turn, CANCELLED_TOOL_ERROR, denial=f"cancelled: {reason}" if reason else "cancelled")
    session_id = turn.session_id
    if partial_text:
        append_message(
            session_id=session_id,
            turn_id=turn.pk,
            role=Message.Role.ASSISTANT,
            content=[{"type": "text", "text": partial_text}],
            metadata={"model": model, "cancelled": True, "usage": usage},
            message_id=message_id,
        )
    Turn.objects.filter(pk=turn.pk).update(
        status=Turn.Status.CANCELLED, finished_at=timezone.now(), lease_owner="", lease_expires_at=None
    )
    append_event(session_id=session_id, turn_id=turn.pk, type="turn.cancelled", data={"reason": reason})
    set_session_status(session_id=session_id, status=Session.Status.PENDING, turn_id=turn.pk, active_turn=None)
