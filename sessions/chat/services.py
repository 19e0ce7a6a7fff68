"""What a chat front-end's request does to the session, for both protocols (sessions/chat/sse.py).

Front-ends send the whole conversation on every request. A message is the session's when its id is one of
ours (the assistant's messages and tool results the stream showed) or when it was stored from an earlier
request (its id is kept in the message's Idempotency-Key, so a repeated or concurrent request stores it
once). Only what comes after the last such message is new; of that, user messages are stored (with
`message_post`, so a turn starts or the running one sees them), and answered approvals are decided.

Front-end tools (AG-UI `tools`) go to the turn as its `client_tools`. A turn that ends on a call of one says so
(`turn.completed.pending_tool_calls`); the client answers with a `tool` message, stored with `tool_result_post`
(a turn starts so the model goes on). A tool message whose call has a result already is history, whatever its id.
"""

import hashlib
import json
import uuid

from django.db import IntegrityError, transaction
from django.db.models import Q

from agents.models import Agent
from everruns.api.errors import field_errors
from everruns.core.errors import Conflict, NotFound, ValidationError
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
    client_tools: list[dict] | None = None,
) -> tuple[int | None, str | None]:
    """Store what is new in `messages` ({id, role, content}; a `tool` message also {tool_call_id, error}) and
    decide the answered `approvals` ({tool_call_id, approved, reason}); `client_tools` are the front-end tools
    the turn offers. Returns (the sequence the run's stream starts after, the turn), or (None, None) when
    nothing runs: nothing was new and no turn is open. Invalid input stores nothing."""
    if session.agent.status == Agent.Status.ARCHIVED:
        raise Conflict("Agent is archived; its sessions are read-only")
    known = _known(session, [m["id"] for m in messages])
    last_known = max((i for i, m in enumerate(messages) if m["id"] in known), default=-1)
    new_users = [m for m in messages[last_known + 1 :] if m["role"] == "user"]
    for message in new_users:
        body = MessageBodySerializer(data={"role": "user", "content": message["content"]})
        if not body.is_valid():
            details = {f"messages.{message['id']}.{k}": v for k, v in field_errors(body.errors).items()}
            raise ValidationError("Invalid message", details=details)
    foreign_calls = {
        c for m in messages if m["role"] == "assistant" and m["id"] not in known for c in m.get("tool_call_ids") or []
    }
    new_tools = [m for m in messages[last_known + 1 :] if m["role"] == "tool"]
    answers = _tool_answers(session, new_tools, foreign_calls)
    start = Session.objects.values_list("last_event_sequence", flat=True).get(pk=session.pk)
    acted = _decide(session, approvals)
    acted = _answer(session, answers, api_key_id=api_key_id, client_tools=client_tools) or acted
    for message in new_users:
        content = message["content"]
        _, created = services.message_post(
            session=session,
            content=content,
            metadata={"client_message_id": message["id"], **(metadata or {})},
            idempotency_key=_key(message["id"]),
            idempotency_hash=_content_hash(content),
            api_key_id=api_key_id,
            client_tools=client_tools,
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


def _tool_answers(session: Session, tool_messages: list[dict], foreign_calls: set[str]) -> list[dict]:
    """The new tool messages that answer a call the client is to answer (named in a `turn.completed`'s
    `pending_tool_calls`) and that has no result yet. One whose call has a result, or answers a call of the
    client's own assistant messages (`foreign_calls`, history from elsewhere), is history. Any other call
    (unknown, or one the server runs) is invalid input.

    Two flat queries whatever the number of messages: a `tool_result` message holds one part (every writer
    stores one), so its call id is one JSON path and the ids are one IN list. (An OR of a containment test
    per message took 19 s of a web thread for 50,000 messages, most of it building the query.)"""
    if not tool_messages:
        return []
    ids = list({m["tool_call_id"] for m in tool_messages})
    results = Message.objects.filter(session=session, role=Message.Role.TOOL_RESULT, content__0__tool_call_id__in=ids)
    answered = set(results.values_list("content__0__tool_call_id", flat=True))
    completions = Event.objects.filter(session=session, type="turn.completed", data__has_key="pending_tool_calls")
    pending = {
        call.get("id")
        for calls in completions.values_list("data__pending_tool_calls", flat=True)
        for call in calls or []
        if isinstance(call, dict)
    }
    answers, taken = [], set()
    for message in tool_messages:
        call_id = message["tool_call_id"]
        if call_id in answered or call_id in taken:
            continue
        if call_id in pending:
            answers.append(message)
            taken.add(call_id)
        elif call_id not in foreign_calls:
            problem = "No call of a front-end tool with this id waits for its result in this session."
            raise ValidationError("Invalid message", details={f"messages.{message['id']}.toolCallId": [problem]})
    return answers


def _answer(session: Session, answers: list[dict], *, api_key_id, client_tools) -> bool:
    """Store the client's results, all before the turn they start is queued (it is on commit), so that turn
    sees every one of them."""
    acted = False
    with transaction.atomic():
        for message in answers:
            try:
                services.tool_result_post(
                    session=session,
                    tool_call_id=message["tool_call_id"],
                    result=message["content"],
                    error=message.get("error"),
                    api_key_id=api_key_id,
                    client_tools=client_tools,
                )
                acted = True
            except Conflict:  # answered meanwhile by another request with the same history
                pass
    return acted


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
