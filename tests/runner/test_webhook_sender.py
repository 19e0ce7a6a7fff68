"""Delivery attempts against a real HTTP receiver: Standard Webhooks signatures (checked with the library's own
verifier), retries with the same webhook-id, time-outs, no redirects, the address guard, the in-flight limit."""

import json
import time

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Verifier

from runner.webhooks.sender import attempt_once
from sessions.log import append_event
from sessions.webhooks import deliveries
from sessions.webhooks.models import WebhookDelivery
from sessions.webhooks.services import webhook_create, webhook_rotate_secret
from tests.factories import make_session
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def completed(webhook_url: str, **webhook_fields):
    """A webhook on turn.completed, and one such event (its delivery pending)."""
    webhook = webhook_create(url=webhook_url, events=["turn.completed"], **webhook_fields)
    session = make_session()
    event = append_event(session_id=session.pk, type="turn.completed", data={"iterations": 1, "usage": {}})
    return webhook, session, event, WebhookDelivery.objects.get(webhook=webhook)


def due_now(delivery) -> None:
    """Skip the wait before a retry (the schedule itself is tested by its numbers)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_a_delivery_is_signed_and_the_library_verifies_it(receiver):
    webhook, session, event, delivery = completed(receiver.url)
    assert attempt_once(str(delivery.pk)) == "delivered"
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert headers["content-type"] == "application/json" and headers["webhook-id"] == str(delivery.pk)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 10
    payload = Verifier(webhook.secret).verify(body, headers)
    assert payload["type"] == "turn.completed"
    assert payload["data"]["session_id"] == str(session.pk) and payload["data"]["agent_id"] == str(session.agent_id)
    assert payload["data"]["event"]["id"] == str(event.id) and payload["data"]["event"]["sequence"] == event.sequence
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    assert attempt_once(str(delivery.pk)) is None  # delivered: nothing more is sent
    assert len(receiver.requests) == 1


def test_a_tampered_body_or_another_secret_does_not_verify(receiver):
    webhook, *_ = completed(receiver.url)
    attempt_once(str(WebhookDelivery.objects.get().pk))
    request = receiver.requests[0]
    with pytest.raises(Exception, match="signature"):
        Verifier(webhook.secret).verify(request["body"].replace(b"turn.completed", b"turn.failed"), request["headers"])
    with pytest.raises(Exception, match="signature"):
        Verifier("whsec_" + "A" * 32).verify(request["body"], request["headers"])


def test_a_500_is_retried_with_the_same_webhook_id_then_a_200_delivers(receiver, settings):
    receiver.reply({"status": 500})
    _, _, _, delivery = completed(receiver.url)
    before = timezone.now()
    assert attempt_once(str(delivery.pk)) == "pending"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 500, "HTTP 500")
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert settings.WEBHOOK_RETRY_SCHEDULE[0] - 0.1 <= wait <= settings.WEBHOOK_RETRY_SCHEDULE[0] + 2
    assert attempt_once(str(delivery.pk)) is None  # not due yet
    due_now(delivery)
    assert attempt_once(str(delivery.pk)) == "delivered"
    ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert ids == [str(delivery.pk)] * 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)


def test_after_the_last_retry_a_delivery_is_failed(receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0.1, 0.1]
    receiver.reply({"status": 503}, {"status": 502}, {"status": 500})
    _, _, _, delivery = completed(receiver.url)
    outcomes = []
    for _ in range(3):
        due_now(delivery)
        outcomes.append(attempt_once(str(delivery.pk)))
    assert outcomes == ["pending", "pending", "failed"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 3, 500)
    assert delivery.next_attempt_at is None and attempt_once(str(delivery.pk)) is None


def test_a_receiver_that_never_answers_times_out(receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.reply({"hang": True})
    _, _, _, delivery = completed(receiver.url)
    started = time.monotonic()
    assert attempt_once(str(delivery.pk)) == "pending"
    assert time.monotonic() - started < 3
    delivery.refresh_from_db()
    assert delivery.last_status_code is None and "timed out" in delivery.last_error


def test_a_redirect_is_not_followed(receiver):
    receiver.reply({"status": 302})
    _, _, _, delivery = completed(receiver.url)
    assert attempt_once(str(delivery.pk)) == "pending"
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302


def test_the_address_guard_refuses_at_send_time_too(receiver, settings):
    _, _, _, delivery = completed(receiver.url)
    settings.WEBHOOK_ALLOWED_HOSTS = []  # the operator took loopback off the list after the webhook was made
    assert attempt_once(str(delivery.pk)) == "pending"
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert "refused" in delivery.last_error and "127.0.0.1" in delivery.last_error


def test_during_a_rotation_each_secret_verifies(receiver):
    webhook, *_ = completed(receiver.url)
    old = webhook.secret
    new = webhook_rotate_secret(webhook=webhook).secret
    attempt_once(str(WebhookDelivery.objects.get().pk))
    request = receiver.requests[0]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Verifier(secret).verify(request["body"], request["headers"])


def test_a_deleted_session_fails_its_pending_delivery(receiver):
    _, session, _, delivery = completed(receiver.url)
    session.delete()
    assert attempt_once(str(delivery.pk)) is None
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "deleted" in delivery.last_error
    assert receiver.requests == []


def test_a_webhook_has_at_most_its_in_flight_limit_of_attempts_claimed(receiver, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT = 1
    webhook = webhook_create(url=receiver.url, events=["turn.completed"])
    other = webhook_create(url=receiver.url + "/other", events=["turn.completed"])
    session = make_session()
    for _ in range(2):
        append_event(session_id=session.pk, type="turn.completed", data={})
    first, second = WebhookDelivery.objects.filter(webhook=webhook).order_by("id")
    assert deliveries.attempt_claim(first.pk) is not None  # in flight (never recorded: as if it hangs)
    assert deliveries.attempt_claim(second.pk) is None  # over the limit: it waits
    assert deliveries.attempt_claim(WebhookDelivery.objects.filter(webhook=other).first().pk) is not None
    assert str(first.pk) not in deliveries.due_ids() and str(second.pk) not in deliveries.due_ids()  # no free slot
    deliveries.attempt_record(deliveries.Attempt(str(first.pk), receiver.url, "{}", [], 1), status_code=200)
    assert str(second.pk) in deliveries.due_ids()  # the slot is free again


def test_the_body_is_the_contract_shape():
    webhook, session, event, delivery = completed("http://127.0.0.1:9/x")
    body = json.loads(deliveries.body_of(delivery, event))
    assert set(body) == {"type", "timestamp", "data"}
    assert set(body["data"]) == {"agent_id", "session_id", "turn_id", "event"}
    assert body["timestamp"] == body["data"]["event"]["created_at"]


def test_a_sweep_takes_no_more_of_a_webhooks_backlog_than_its_free_slots(settings):
    settings.WEBHOOK_MAX_IN_FLIGHT = 2
    slow = webhook_create(url="http://127.0.0.1:9/slow", events=["turn.completed"])
    other = webhook_create(url="http://127.0.0.1:9/other", events=["turn.completed"])
    session = make_session()
    for _ in range(5):
        append_event(session_id=session.pk, type="turn.completed", data={})
    backlog = [
        str(pk) for pk in WebhookDelivery.objects.filter(webhook=slow).order_by("id").values_list("id", flat=True)
    ]
    others = {str(pk) for pk in WebhookDelivery.objects.filter(webhook=other).values_list("id", flat=True)}
    due = deliveries.due_ids()
    assert [d for d in due if d in backlog] == backlog[:2] and len([d for d in due if d in others]) == 2
    assert deliveries.attempt_claim(backlog[0]) is not None  # one slot taken (in flight)
    assert [d for d in deliveries.due_ids() if d in backlog] == [backlog[1]]
