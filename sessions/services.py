"""Session actions: views call these; they decide, write, and queue turns after commit."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, ExpressionWrapper
from django.db.models.functions import Now
from django.utils import timezone

from agents.models import Agent, LlmModel
from everruns.celery import RUN_TURN_TASK
from everruns.celery import app as celery_app
from everruns.errors import Conflict, NotFound, ValidationError
from everruns.services import instance_update
from sessions.log import SessionGone, append_event, append_message
from sessions.models import Message, Session, Turn

logger = logging.getLogger(__name__)

_UNSET = object()


def _model_or_error(model_id) -> LlmModel | None:
    if model_id is None:
        return None
    model = LlmModel.objects.filter(pk=model_id).first()
    if model is None:
        raise ValidationError("Unknown model", details={"model_id": [f"No model with id {model_id}."]})
    return model


def session_create(*, agent: Agent, title: str | None = None, tags: list | None = None, model_id=None) -> Session:
    if agent.status == Agent.Status.ARCHIVED:
        raise Conflict("Agent is archived; it takes no new sessions")
    return Session.objects.create(agent=agent, title=title, tags=tags or [], model=_model_or_error(model_id))


def session_update(*, session: Session, title=_UNSET, tags=_UNSET, model_id=_UNSET) -> Session:
    data = {}
    if title is not _UNSET:
        data["title"] = title
    if tags is not _UNSET:
        data["tags"] = tags or []
    if model_id is not _UNSET:
        _model_or_error(model_id)
        data["model_id"] = model_id
    instance_update(session, fields=["title", "tags", "model_id"], data=data)
    return session


def session_delete(*, session: Session) -> None:
    """Deletes the session with its messages, events, turns and files. A running turn finds its
    session gone at its next step and stops."""
    Session.objects.filter(pk=session.pk).delete()


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


def queue_deadline():
    """When a queued turn counts as lost (database clock): now + TURN_QUEUED_GRACE_SECONDS."""
    return ExpressionWrapper(
        Now() + timedelta(seconds=settings.TURN_QUEUED_GRACE_SECONDS), output_field=DateTimeField()
    )


def queue_turn(turn_id) -> None:
    """Hand the turn to a worker by task name. If the broker is down the turn stays queued and the
    sweeper queues it again."""
    try:
        celery_app.send_task(RUN_TURN_TASK, args=[str(turn_id)])
    except Exception as exc:
        logger.warning("could not queue turn %s: %s", turn_id, exc)


def message_post(
    *,
    session: Session,
    content: list,
    controls: dict | None = None,
    metadata: dict | None = None,
    idempotency_key: str | None = None,
) -> tuple[Message, bool]:
    """Store a user message; start a turn unless one is running (that one sees the message at its
    next LLM call). Returns (message, created)."""
    if session.agent.status == Agent.Status.ARCHIVED:
        raise Conflict("Agent is archived; its sessions are read-only")
    if controls and controls.get("model_id"):
        _model_or_error(controls["model_id"])
    try:
        with transaction.atomic():
            locked = Session.objects.select_for_update().filter(pk=session.pk).first()
            if locked is None:
                raise NotFound("Session not found")
            if idempotency_key:
                existing = Message.objects.filter(session_id=session.pk, idempotency_key=idempotency_key).first()
                if existing:
                    return existing, False
            message = append_message(
                session_id=session.pk,
                role=Message.Role.USER,
                content=content,
                controls=controls,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
            active = (
                locked.active_turn_id and Turn.objects.filter(pk=locked.active_turn_id, status__in=Turn.ACTIVE).exists()
            )
            if not active:
                turn = Turn.objects.create(
                    session_id=session.pk, input_message_ids=[str(message.id)], lease_expires_at=queue_deadline()
                )
                Message.objects.filter(pk=message.pk).update(turn=turn)
                set_session_status(
                    session_id=session.pk, status=Session.Status.RUNNING, turn_id=turn.id, active_turn=turn
                )
                transaction.on_commit(lambda: queue_turn(turn.id))
    except IntegrityError:
        # Two requests with one Idempotency-Key raced; the other one stored the message.
        existing = Message.objects.filter(session_id=session.pk, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing, False
    session.refresh_from_db()
    return message, True
