"""What a chat front-end's request does to the session, for both protocols (sessions/chat_sse.py).

Front-ends send the whole conversation on every request. A message is the session's when its id is one of
ours (the assistant's messages and tool results the stream showed) or when it was stored from an earlier
request (its id is kept in the message's Idempotency-Key, so a repeated or concurrent request stores it
once). Only what comes after the last such message is new; of that, user messages are stored (with
`message_post`, so a turn starts or the running one sees them), and answered approvals are decided.
"""

import hashlib
import json
import uuid

from django.db import IntegrityError, transaction
from django.db.models import Q

from agents.models import Agent
from everruns.api.errors import _flatten
from everruns.errors import Conflict, NotFound, ValidationError
from sessions import services, turns
from sessions.models import Event, Message, Session, Turn
from sessions.serializers import MessageBodySerializer

KEY_PREFIX = "client-message:"  # the Idempotency-Key of a message stored from a front-end's history


def _key(client_id: str) -> str:
    key = KEY_PREFIX + client_id
    return key if len(key) <= 255 else KEY_PREFIX + "sha256:" + hashlib.sha256(client_id.encode()).hexdigest()


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def thread_session(*, agent: Agent, thread_id: str) -> Session:
    """The session an AG-UI threadId names: one of the agent's sessions by id, else the one made for that
    thread before, else a new one (created on first use)."""
    if (pk := _uuid(thread_id)) and (session := Session.objects.filter(pk=pk, agent=agent).first()):
        return session
    if session := Session.objects.filter(agent=agent, external_id=thread_id).first():
        return session
    try:
        with transaction.atomic():
            return services.session_create(agent=agent, external_id=thread_id)
    except IntegrityError:  # two first requests on one thread at once
        return Session.objects.get(agent=agent, external_id=thread_id)


def _known(session: Session, ids: list[str]) -> set[str]:
    """Which of the client's message ids the session has (ours, or stored from a client before)."""
    pks = [pk for pk in (_uuid(i) for i in ids) if pk]
    keys = {_key(i): i for i in ids}
    rows = Message.objects.filter(session=session).filter(Q(pk__in=pks) | Q(idempotency_key__in=list(keys)))
    known = set()
    for pk, key in rows.values_list("pk", "idempotency_key"):
        known.add(str(pk))
        if key in keys:
            known.add(keys[key])
    return known


def _content_hash(content: list) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def chat_post(
    *,
    session: Session,
    messages: list[dict],
    approvals: list[dict],
    metadata: dict | None = None,
    api_key_id: str | None = None,
) -> tuple[int | None, str | None]:
    """Store what is new in `messages` ({id, role, content}) and decide the answered `approvals`
    ({tool_call_id, approved, reason}). Returns (the sequence the run's stream starts after, the turn),
    or (None, None) when nothing runs: nothing was new and no turn is open."""
    if session.agent.status == Agent.Status.ARCHIVED:
        raise Conflict("Agent is archived; its sessions are read-only")
    known = _known(session, [m["id"] for m in messages])
    last_known = max((i for i, m in enumerate(messages) if m["id"] in known), default=-1)
    new_users = [m for m in messages[last_known + 1 :] if m["role"] == "user"]
    for message in new_users:
        body = MessageBodySerializer(data={"role": "user", "content": message["content"]})
        if not body.is_valid():
            details = {f"messages.{message['id']}.{k}": v for k, v in _flatten(body.errors).items()}
            raise ValidationError("Invalid message", details=details)
    start = Session.objects.values_list("last_event_sequence", flat=True).get(pk=session.pk)
    acted = _decide(session, approvals)
    for message in new_users:
        content = message["content"]
        _, created = services.message_post(
            session=session,
            content=content,
            metadata={"client_message_id": message["id"], **(metadata or {})},
            idempotency_key=_key(message["id"]),
            idempotency_hash=_content_hash(content),
            api_key_id=api_key_id,
        )
        acted = acted or created
    turn_id = Session.objects.values_list("active_turn_id", flat=True).get(pk=session.pk)
    if acted:
        return start, _turn_after(session, start, turn_id)
    if turn_id is None:
        return None, None
    # Nothing new, a turn running: the run is the rest of it, from now.
    return Session.objects.values_list("last_event_sequence", flat=True).get(pk=session.pk), str(turn_id)


def _turn_after(session: Session, start: int, active_turn_id) -> str | None:
    """The turn of the run that starts after `start`: the session's open one, or one that already ended."""
    if active_turn_id:
        return str(active_turn_id)
    turn = Event.objects.filter(session=session, sequence__gt=start, turn_id__isnull=False).order_by("sequence")
    found = turn.values_list("turn_id", flat=True).first()
    return str(found) if found else None


def _decide(session: Session, approvals: list[dict]) -> bool:
    """Decide the approvals still pending; answers to calls decided already are history, not news."""
    if not approvals:
        return False
    turn = Turn.objects.filter(session=session, status__in=Turn.OPEN).order_by("-id").first()
    pending = {k for k, v in ((turn.approvals or {}) if turn else {}).items() if v.get("status") == "pending"}
    acted = False
    for decision in approvals:
        if decision["tool_call_id"] not in pending:
            continue
        try:
            turns.approval_resolve(session_id=session.pk, **decision)
            acted = True
        except (Conflict, NotFound):  # decided meanwhile by another request
            pass
    return acted


def run_resume_start(*, session: Session) -> tuple[int | None, str | None]:
    """Where the open turn's run starts (the AI SDK's resume replays it): just before its first event."""
    turn_id = Session.objects.values_list("active_turn_id", flat=True).get(pk=session.pk)
    if turn_id is None:
        return None, None
    first = Event.objects.filter(session=session, turn_id=turn_id).order_by("sequence").values_list("sequence")[:1]
    sequence = first[0][0] if first else None
    if sequence is None:
        return None, None
    return sequence - 1, str(turn_id)
