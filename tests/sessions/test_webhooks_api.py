"""`/v1/webhooks`: the secret shown once, rotation, filters, the address guard, and the outbox row written with
each matching event."""

import base64

import pytest
from django.db import transaction

from sessions.log import append_event
from sessions.webhooks.models import DEFAULT_EVENTS, Webhook, WebhookDelivery
from sessions.webhooks.services import signing_secrets
from tests.factories import make_agent, make_session, text

URL = "http://127.0.0.1:9/hook"


def create(api, **body):
    return api.post("/v1/webhooks", {"url": URL, **body}, format="json")


def test_create_shows_the_secret_once(api):
    response = create(api)
    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 24
    assert body["events"] == DEFAULT_EVENTS and body["enabled"] is True and body["agent_id"] is None
    again = api.get(f"/v1/webhooks/{body['id']}").json()
    assert "secret" not in again and again["url"] == URL
    assert all("secret" not in item for item in api.get("/v1/webhooks").json()["items"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["turn.finished"]}, "events"),
        ({"events": []}, "events"),
        ({"events": ["message.delta"]}, "events"),
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"agent_id": "0190b4f0-0000-7000-8000-000000000000"}, "agent_id"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_bad_input_is_a_400_and_stores_nothing(api, body, field):
    response = create(api, **body)
    assert response.status_code == 400 and field in response.json()["error"]["details"]
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.5/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]:8000/h", "http://localhost/h"],
)
def test_non_public_targets_are_refused_unless_allowed(api, settings, url):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    response = create(api, url=url)
    assert response.status_code == 400
    assert "refused" in response.json()["error"]["details"]["url"][0]
    settings.WEBHOOK_ALLOWED_HOSTS = ["10.0.0.5", "169.254.169.254", "::1", "localhost"]
    assert create(api, url=url).status_code == 201


def test_a_patch_to_a_refused_url_changes_nothing(api, settings):
    webhook = create(api).json()
    settings.WEBHOOK_ALLOWED_HOSTS = []
    response = api.patch(f"/v1/webhooks/{webhook['id']}", {"url": "http://10.1.2.3/x"}, format="json")
    assert response.status_code == 400
    assert Webhook.objects.get(pk=webhook["id"]).url == URL


def test_rotation_returns_a_new_secret_and_both_sign_for_a_day(api):
    webhook = create(api).json()
    rotated = api.post(f"/v1/webhooks/{webhook['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != webhook["secret"] and new.startswith("whsec_")
    assert signing_secrets(Webhook.objects.get(pk=webhook["id"])) == [new, webhook["secret"]]


def test_patch_and_delete(api):
    webhook = create(api).json()
    patched = api.patch(f"/v1/webhooks/{webhook['id']}", {"enabled": False, "events": ["turn.failed"]}, format="json")
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert patched.json()["events"] == ["turn.failed"]
    assert api.delete(f"/v1/webhooks/{webhook['id']}").status_code == 204
    assert api.get(f"/v1/webhooks/{webhook['id']}").status_code == 404


def test_a_matching_event_writes_one_delivery_per_webhook(api):
    agent = make_agent()
    other = make_agent()
    session = make_session(agent)
    wanted = create(api, events=["message.user", "session.status"]).json()
    of_agent = create(api, events=["message.user"], agent_id=str(agent.pk)).json()
    create(api, events=["message.user"], agent_id=str(other.pk))  # another agent's: not this session
    create(api, events=["message.user"], enabled=False)  # disabled
    create(api, events=["turn.completed"])  # another type
    path = f"/v1/agents/{agent.pk}/sessions/{session.pk}/messages"
    assert api.post(path, text("hello"), format="json").status_code == 201
    rows = WebhookDelivery.objects.order_by("id")
    got = sorted((str(d.webhook_id), d.event_type) for d in rows)
    expected = [(wanted["id"], "message.user"), (wanted["id"], "session.status"), (of_agent["id"], "message.user")]
    assert got == sorted(expected)
    assert all(d.status == "pending" and d.session_id == session.pk and d.agent_id == agent.pk for d in rows)
    assert all(d.id.version == 7 for d in rows)
    listed = api.get(f"/v1/webhooks/{wanted['id']}/deliveries").json()
    assert listed["total"] == 2
    assert set(listed["items"][0]) == {
        "id", "event_type", "session_id", "status", "attempts", "last_status_code", "last_error",
        "next_attempt_at", "created_at", "delivered_at",
    }  # fmt: skip


def test_an_event_rolled_back_leaves_no_delivery(api, transactional_db):
    create(api, events=["turn.completed"])
    session = make_session()
    with pytest.raises(RuntimeError), transaction.atomic():
        append_event(session_id=session.pk, type="turn.completed", data={})
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the step failed")
    assert not WebhookDelivery.objects.exists()


def test_retry_sends_a_failed_delivery_again(api):
    webhook = create(api, events=["turn.completed"]).json()
    session = make_session()
    append_event(session_id=session.pk, type="turn.completed", data={})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=3, next_attempt_at=None)
    response = api.post(f"/v1/webhooks/{webhook['id']}/deliveries/{delivery.pk}/retry")
    assert response.status_code == 202
    assert response.json()["status"] == "pending" and response.json()["next_attempt_at"] is not None
    assert api.post(f"/v1/webhooks/{webhook['id']}/deliveries/{session.pk}/retry").status_code == 404
