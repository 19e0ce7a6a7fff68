"""Every transition of a webhook delivery, in one place: claim an attempt, record its outcome (delivered, retry
later, failed), and which deliveries are due.

A delivery is `pending` until an attempt gets a 2xx answer (`delivered`) or the last retry of
WEBHOOK_RETRY_SCHEDULE fails (`failed`). A sender claims one attempt at a time by setting `locked_until` (the
attempt's time-out and some slack, database clock); a sender that dies lets go when it passes, and the next sweep
tries again with the same `webhook-id`. At most WEBHOOK_MAX_IN_FLIGHT attempts of one webhook are claimed at once,
counted under that webhook's row lock, so a slow endpoint holds at most that many sender threads anywhere."""

import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import Coalesce, Now, RowNumber

from everruns.core.dates import rfc3339
from sessions.log import event_to_dict
from sessions.models import Event
from sessions.webhooks.models import Webhook, WebhookDelivery
from sessions.webhooks.services import signing_secrets

CLAIM_SLACK_SECONDS = 5.0
EXCERPT_CHARS = 512


@dataclass(frozen=True)
class Attempt:
    """What a sender needs to make one attempt: where, what (the exact bytes to sign and send) and with which keys."""

    delivery_id: str
    url: str
    body: str
    secrets: list[str]
    number: int


def _from_now(seconds: float):
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def _unlocked() -> Q:
    return Q(locked_until__isnull=True) | Q(locked_until__lt=Now())


def due_ids(limit: int = 200) -> list[str]:
    """Pending deliveries of enabled webhooks whose next attempt is due and that no sender holds, oldest first, and
    per webhook no more than its free in-flight slots: a dead endpoint's backlog costs a sweep nothing."""
    busy = (
        WebhookDelivery.objects.filter(
            webhook_id=OuterRef("webhook_id"), status=WebhookDelivery.Status.PENDING, locked_until__gt=Now()
        )
        .order_by()
        .values("webhook_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    rows = (
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=Now())
        .filter(_unlocked(), webhook__enabled=True)
        .annotate(
            place=Window(RowNumber(), partition_by=[F("webhook_id")], order_by=[F("next_attempt_at").asc(), F("id")]),
            busy=Coalesce(Subquery(busy), 0),
        )
        .filter(place__lte=settings.WEBHOOK_MAX_IN_FLIGHT - F("busy"))
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    return [str(pk) for pk in rows]


def body_of(delivery: WebhookDelivery, event: Event) -> str:
    """The Standard Webhooks payload, serialised once: these bytes are signed and sent."""
    payload = {
        "type": event.type,
        "timestamp": rfc3339(event.created_at),
        "data": {
            "agent_id": str(delivery.agent_id),
            "session_id": str(delivery.session_id),
            "turn_id": str(event.turn_id) if event.turn_id else None,
            "event": event_to_dict(event),
        },
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def attempt_claim(delivery_id) -> Attempt | None:
    """Take the delivery's next attempt, or None: not due, held by another sender, its webhook disabled or at its
    in-flight limit (the sweep comes back to it), or nothing left to send (its event was deleted: failed)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=Now())
            .filter(_unlocked())
            .first()
        )
        if delivery is None:
            return None
        webhook = Webhook.objects.select_for_update().filter(pk=delivery.webhook_id, enabled=True).first()
        if webhook is None:
            return None
        in_flight = WebhookDelivery.objects.filter(
            webhook_id=webhook.pk, status=WebhookDelivery.Status.PENDING, locked_until__gt=Now()
        ).count()
        if in_flight >= settings.WEBHOOK_MAX_IN_FLIGHT:
            return None
        event = Event.objects.filter(pk=delivery.event_id).first()
        if event is None:
            _finish(delivery.pk, WebhookDelivery.Status.FAILED, error="the event was deleted with its session")
            return None
        number = delivery.attempts + 1
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=number, locked_until=_from_now(settings.WEBHOOK_TIMEOUT_SECONDS + CLAIM_SLACK_SECONDS)
        )
        return Attempt(str(delivery.pk), webhook.url, body_of(delivery, event), signing_secrets(webhook), number)


def _finish(delivery_id, status: str, *, status_code=None, error=None, excerpt=None) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status=status,
        last_status_code=status_code,
        last_error=error,
        last_response_excerpt=excerpt,
        locked_until=None,
        next_attempt_at=None,
        **({"delivered_at": Now()} if status == WebhookDelivery.Status.DELIVERED else {}),
    )


def attempt_record(
    attempt: Attempt, *, status_code: int | None = None, error: str | None = None, excerpt: str | None = None
) -> str:
    """The outcome of an attempt: a 2xx answer delivers; anything else waits for the next retry of
    WEBHOOK_RETRY_SCHEDULE, or fails after the last. Returns the delivery's status."""
    excerpt = excerpt[:EXCERPT_CHARS] if excerpt else excerpt
    error = error[:EXCERPT_CHARS] if error else error
    if status_code is not None and 200 <= status_code < 300 and error is None:
        _finish(attempt.delivery_id, WebhookDelivery.Status.DELIVERED, status_code=status_code, excerpt=excerpt)
        return WebhookDelivery.Status.DELIVERED
    if error is None:
        error = f"HTTP {status_code}"
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempt.number > len(schedule):
        _finish(
            attempt.delivery_id, WebhookDelivery.Status.FAILED, status_code=status_code, error=error, excerpt=excerpt
        )
        return WebhookDelivery.Status.FAILED
    WebhookDelivery.objects.filter(pk=attempt.delivery_id).update(
        last_status_code=status_code,
        last_error=error,
        last_response_excerpt=excerpt,
        locked_until=None,
        next_attempt_at=_from_now(schedule[attempt.number - 1]),
    )
    return WebhookDelivery.Status.PENDING
