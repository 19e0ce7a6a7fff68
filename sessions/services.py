"""Session actions: views call these; they decide, write, and queue turns after commit."""

import functools
import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from agents.models import Agent, LlmModel
from everruns.core import rows
from everruns.core.errors import Conflict, NotFound, TooManyRequests, ValidationError
from everruns.services import instance_update
from sessions import sql, turns
from sessions.log import append_message
from sessions.models import Message, Session, Turn
from sessions.turns import control

logger = logging.getLogger(__name__)

_UNSET = object()


def _model_or_error(model_id) -> LlmModel | None:
    if model_id is None:
        return None
    model = LlmModel.objects.filter(pk=model_id).first()
    if model is None:
        raise ValidationError("Unknown model", details={"model_id": [f"No model with id {model_id}."]})
    return model


def session_create(
    *,
    agent: Agent,
    title: str | None = None,
    tags: list | None = None,
    model_id=None,
    limits: dict | None = None,
    external_id: str | None = None,
) -> Session:
    if agent.status == Agent.Status.ARCHIVED:
        raise Conflict("Agent is archived; it takes no new sessions")
    # Written out (everruns/core/rows.py): creating sessions is one of the hot writes.
    return rows.insert(
        Session(
            agent=agent,
            title=title,
            tags=tags or [],
            # No model given: the agent's default at creation, shown in the session (as upstream Everruns does).
            model_id=_model_or_error(model_id).pk if model_id is not None else agent.default_model_id,
            limits=limits or {},
            external_id=external_id,
        )
    )


def session_update(*, session: Session, title=_UNSET, tags=_UNSET, model_id=_UNSET, limits=_UNSET) -> Session:
    data = {}
    if title is not _UNSET:
        data["title"] = title
    if tags is not _UNSET:
        data["tags"] = tags or []
    if model_id is not _UNSET:
        _model_or_error(model_id)
        data["model_id"] = model_id
    if limits is not _UNSET:
        data["limits"] = limits
    instance_update(session, fields=["title", "tags", "model_id", "limits"], data=data)
    return session


def session_delete(*, session: Session) -> None:
    """Cancels the session's open turn (its tools are told to stop), then deletes the session with its
    messages, events, turns and files. A worker still on the turn finds it gone and stops."""
    with transaction.atomic():
        turn = turns.lock_open_turn(session.pk)
        if turn is not None:
            transaction.on_commit(lambda: control.send(turn.pk, "cancel"))
        Session.objects.filter(pk=session.pk).delete()


def _replayed(message: Message, idempotency_hash: str | None) -> Message:
    """The message first stored under an Idempotency-Key, if this request is the same one."""
    if message.idempotency_hash and idempotency_hash and message.idempotency_hash != idempotency_hash:
        raise Conflict(
            "This Idempotency-Key was used with a different request body",
            details={"Idempotency-Key": ["Already used for another message on this session."]},
        )
    return message


def message_post(
    *,
    session: Session,
    content: list,
    controls: dict | None = None,
    metadata: dict | None = None,
    idempotency_key: str | None = None,
    idempotency_hash: str | None = None,
    api_key_id: str | None = None,
    client_tools: list | None = None,
) -> tuple[Message, bool]:
    """Store a user message; start a turn unless one is running (that one sees the message at its
    next LLM call). Returns (message, created). A turn started for an API key counts against its
    MAX_TURNS_PER_KEY. `client_tools`: front-end tools (AG-UI) the turn offers the model."""
    if session.agent.status == Agent.Status.ARCHIVED:
        raise Conflict("Agent is archived; its sessions are read-only")
    if controls and controls.get("model_id"):
        _model_or_error(controls["model_id"])
    store = functools.partial(
        _message_store,
        session=session,
        content=content,
        controls=controls,
        metadata=metadata,
        idempotency_key=idempotency_key,
        idempotency_hash=idempotency_hash,
        api_key_id=api_key_id,
        client_tools=client_tools,
    )
    known_turn_id = session.active_turn_id
    # The events are published one by one as the transaction commits, before the turn is queued (the hooks run
    # in order): published together after it, a worker's `turn.started` could reach the streams before the
    # message's own events, and a gap sends every stream of the session back to the log.
    for attempt in range(3):
        try:
            return store(known_turn_id=known_turn_id, last_attempt=attempt == 2)
        except _StaleTurn as stale:
            known_turn_id = stale.turn_id
        except IntegrityError:
            # Two requests with one Idempotency-Key raced; the other one stored the message.
            existing = Message.objects.filter(session_id=session.pk, idempotency_key=idempotency_key).first()
            if existing is None:
                raise
            return _replayed(existing, idempotency_hash), False
    raise AssertionError("unreachable: the last attempt does not retry")


class _StaleTurn(Exception):
    """The session's open turn changed between its read and its lock: lock again, turn row first."""

    def __init__(self, turn_id):
        super().__init__(str(turn_id))
        self.turn_id = turn_id


def _message_store(
    *,
    session,
    known_turn_id,
    content,
    controls,
    metadata,
    idempotency_key,
    idempotency_hash,
    api_key_id,
    client_tools,
    last_attempt,
) -> tuple[Message, bool]:
    with transaction.atomic():
        open_turn = turns.lock_open_turn(session.pk, active_turn_id=known_turn_id)
        locked = rows.by_pk(Session, session.pk, lock=True)
        if locked is None:
            raise NotFound("Session not found")
        active = open_turn if open_turn and open_turn.pk == locked.active_turn_id else None
        if active is None and locked.active_turn_id:  # a turn started since the session was read
            if not last_attempt:
                raise _StaleTurn(locked.active_turn_id)  # roll back: taking its row now could deadlock
            active = Turn.objects.select_for_update().filter(pk=locked.active_turn_id, status__in=Turn.OPEN).first()
        if idempotency_key:
            existing = sql.message_by_idempotency_key(session_id=session.pk, key=idempotency_key)
            if existing:
                return _replayed(existing, idempotency_hash), False
        message = append_message(
            session_id=session.pk,
            role=Message.Role.USER,
            content=content,
            controls=controls,
            metadata=metadata,
            idempotency_key=idempotency_key,
            idempotency_hash=idempotency_hash if idempotency_key else None,
        )
        if active:
            if active.approvals:
                turns.approvals_deny_pending(turn=active, reason="a new message arrived")
            if (controls or {}).get("interrupt"):
                turns.turn_interrupt_request(turn=active, sequence=message.sequence)
            if client_tools is not None:
                Turn.objects.filter(pk=active.pk).update(client_tools=client_tools)
        else:
            if api_key_id and turns.turn_count_of_key(api_key_id) >= settings.MAX_TURNS_PER_KEY:
                raise TooManyRequests(
                    f"This API key already has {settings.MAX_TURNS_PER_KEY} turns running; wait for one to end",
                    retry_after=5,
                )
            active = turns.turn_create(
                session_id=session.pk,
                message=message,
                api_key_id=api_key_id or "",
                client_tools=client_tools,
                session_status=locked.status,
            )
            session.status = Session.Status.RUNNING
    # What a caller that posts again with `session` needs (its open turn: message_post's hint); its other
    # fields are as the caller read them.
    session.active_turn_id = active.pk if active else None
    return message, True


def compaction_request(*, session: Session, api_key_id: str | None = None) -> Session:
    """Compact the session's context now (POST .../compact): a turn of its own, run by a worker like any
    turn (so a crash loses nothing), that stores a `context.compacted` and ends. A turn open -> Conflict."""
    if session.agent.status == Agent.Status.ARCHIVED:
        raise Conflict("Agent is archived; its sessions are read-only")
    with transaction.atomic():
        open_turn = turns.lock_open_turn(session.pk)
        locked = rows.by_pk(Session, session.pk, lock=True)
        if locked is None:
            raise NotFound("Session not found")
        if open_turn is not None or locked.active_turn_id:
            raise Conflict("A turn is running; compact the session when it has ended")
        if api_key_id and turns.turn_count_of_key(api_key_id) >= settings.MAX_TURNS_PER_KEY:
            raise TooManyRequests(
                f"This API key already has {settings.MAX_TURNS_PER_KEY} turns running; wait for one to end",
                retry_after=5,
            )
        turns.turn_create(
            session_id=session.pk,
            message=None,
            api_key_id=api_key_id or "",
            session_status=locked.status,
            answered_sequence=locked.last_message_sequence,
        )
    return Session.objects.get(pk=session.pk)


def tool_result_post(
    *,
    session: Session,
    tool_call_id: str,
    result=None,
    error: str | None = None,
    api_key_id: str | None = None,
    client_tools: list | None = None,
) -> Message:
    """A front-end's result for a call of one of its tools (the model called it; the turn ended waiting for
    the client): stored as the call's `tool_result` message, and a turn starts so the model goes on.
    Unknown call -> NotFound; answered already -> Conflict."""
    if session.agent.status == Agent.Status.ARCHIVED:
        raise Conflict("Agent is archived; its sessions are read-only")
    with transaction.atomic():
        open_turn = turns.lock_open_turn(session.pk)
        locked = rows.by_pk(Session, session.pk, lock=True)
        if locked is None:
            raise NotFound("Session not found")
        if locked.active_turn_id and (open_turn is None or open_turn.pk != locked.active_turn_id):
            # A turn started between the two reads: take its row too (rare; the lock order is turn first
            # everywhere else), so its worker sees this result when it completes.
            open_turn = Turn.objects.select_for_update().filter(pk=locked.active_turn_id).first()
        call = next(
            (
                p
                for m in Message.objects.filter(session_id=session.pk, role=Message.Role.ASSISTANT).order_by(
                    "-sequence"
                )
                for p in m.content
                if p.get("type") == "tool_call" and p.get("id") == tool_call_id
            ),
            None,
        )
        if call is None:
            raise NotFound("No tool call with this id in this session")
        answered = Message.objects.filter(
            session_id=session.pk, role=Message.Role.TOOL_RESULT, content__contains=[{"tool_call_id": tool_call_id}]
        ).exists()
        if answered:
            raise Conflict("This tool call has a result already")
        part = {
            "type": "tool_result",
            "tool_call_id": tool_call_id,
            "name": call["name"],
            "result": result,
            "error": error,
        }
        message = append_message(session_id=session.pk, role=Message.Role.TOOL_RESULT, content=[part])
        if open_turn is None:
            turns.turn_create(
                session_id=session.pk, message=message, api_key_id=api_key_id or "", client_tools=client_tools
            )
    return message
