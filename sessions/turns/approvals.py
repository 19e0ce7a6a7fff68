"""A turn's tool approvals: asked for (the turn parks, `waiting`, holding no worker), resolved by a person
through the API (the turn is queued again once every call is decided), denied when a new message comes."""

from django.db import transaction

from everruns.core import deferred
from everruns.core.errors import Conflict, NotFound
from sessions.log import append_event
from sessions.models import Message, Session, Turn
from sessions.turns.lifecycle import (
    queue_deadline,
    resolve_approval,
    set_session_status,
    turn_queue,
    turn_step,
)


def approvals_request(*, turn_id, session_id, owner: str, calls: list[dict]) -> None:
    """Record the calls that need a person's approval and emit `tool.approval_requested` for each."""
    with turn_step(turn_id, owner):
        approvals = Turn.objects.get(pk=turn_id).approvals or {}
        for call in calls:
            approvals[call["id"]] = {"name": call["name"], "status": "pending", "reason": None}
            append_event(
                session_id=session_id,
                turn_id=turn_id,
                type="tool.approval_requested",
                data={"tool_call_id": call["id"], "name": call["name"], "arguments": call["arguments"]},
            )
        Turn.objects.filter(pk=turn_id).update(approvals=approvals)


def turn_wait(*, turn_id, session_id, owner: str) -> bool:
    """Park the turn while a call awaits approval: `waiting`, no lease, no worker. False (keep
    going) when every approval was given while the worker ran the other tools."""
    with turn_step(turn_id, owner):
        turn = Turn.objects.get(pk=turn_id)
        pending = [i for i, a in (turn.approvals or {}).items() if a["status"] == "pending"]
        if not pending:
            return False
        unseen = Message.objects.filter(
            session_id=session_id, role=Message.Role.USER, sequence__gt=turn.answered_sequence
        ).exists()
        if unseen:  # a message came while the model was deciding: it goes first, as while waiting
            for tool_call_id in pending:
                resolve_approval(turn, tool_call_id, approved=False, reason="a new message arrived")
            return False
        Turn.objects.filter(pk=turn_id).update(status=Turn.Status.WAITING, lease_owner="", lease_expires_at=None)
        set_session_status(session_id=session_id, status=Session.Status.WAITING, turn_id=turn_id)
    return True


def _resume_if_decided(turn: Turn) -> None:
    """A waiting turn whose calls are all decided goes back to a worker."""
    if turn.status != Turn.Status.WAITING or any(a["status"] == "pending" for a in turn.approvals.values()):
        return
    Turn.objects.filter(pk=turn.pk).update(status=Turn.Status.QUEUED, lease_expires_at=queue_deadline())
    set_session_status(session_id=turn.session_id, status=Session.Status.RUNNING, turn_id=turn.pk)
    deferred.after_commit(turn_queue, turn.pk)


def approval_resolve(*, session_id, tool_call_id: str, approved: bool, reason: str | None = None) -> None:
    """A person's decision on a call awaiting approval; the turn goes on once all its calls are decided.
    Unknown call -> NotFound; decided already (or its turn ended) -> Conflict."""
    with transaction.atomic():
        # The turn's row first, then the session's: the order every worker step takes them in.
        turn = (
            Turn.objects.select_for_update()
            .filter(session_id=session_id, approvals__has_key=tool_call_id)
            .order_by("-id")
            .first()
        )
        if turn is None:
            raise NotFound("No tool call with this id awaits approval in this session")
        entry = turn.approvals[tool_call_id]
        if entry["status"] != "pending" or turn.status not in Turn.OPEN:
            raise Conflict(
                f"This tool call was already {entry['status']}" if entry["status"] != "pending" else "Its turn ended",
                details={"status": entry["status"], "reason": entry.get("reason")},
            )
        resolve_approval(turn, tool_call_id, approved=approved, reason=reason)
        _resume_if_decided(turn)


def approvals_deny_pending(*, turn: Turn, reason: str) -> None:
    """Inside the caller's transaction (a new user message): deny every pending call of `turn` and
    resume it if it was waiting, so the model sees the message at once."""
    for tool_call_id, entry in (turn.approvals or {}).items():
        if entry["status"] == "pending":
            resolve_approval(turn, tool_call_id, approved=False, reason=reason)
    _resume_if_decided(turn)
