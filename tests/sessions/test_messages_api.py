import pytest
from rest_framework.test import APIClient

from everruns.celery import app as celery_app
from sessions.models import Event, Message, Session, Turn
from sessions.streams import live
from tests.factories import make_agent, make_session, text


@pytest.fixture
def session(api):
    return make_session(make_agent())


def post(api, session, body, **headers):
    return api.post(f"/v1/agents/{session.agent_id}/sessions/{session.pk}/messages", body, format="json", **headers)


def test_post_stores_message_marks_running_and_queues_a_turn(api, session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(api, session, text("Hello"))
    assert response.status_code == 201
    body = response.json()
    assert body["role"] == "user" and body["sequence"] == 1 and body["session_id"] == str(session.pk)
    assert body["content"] == [{"type": "text", "text": "Hello"}]
    assert set(body) == {"id", "session_id", "sequence", "role", "content", "controls", "metadata", "created_at"}
    session.refresh_from_db()
    assert session.status == "running"
    turn = Turn.objects.get(session=session)
    assert turn.status == "queued" and turn.input_message_ids == [body["id"]]
    assert [e.type for e in Event.objects.filter(session=session)] == ["message.user", "session.status"]
    # message event and turn queueing (published + send_task) happen only after commit
    assert len(callbacks) == 3


def test_role_defaults_to_user_and_other_roles_are_rejected(api, session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        assert post(api, session, {"message": {"content": [{"type": "text", "text": "x"}]}}).json()["role"] == "user"
        response = post(api, session, {"message": {"role": "assistant", "content": [{"type": "text", "text": "x"}]}})
    assert response.status_code == 400 and "message" in response.json()["error"]["details"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": {}},
        {"message": {"content": []}},
        {"message": {"content": [{"type": "text", "text": ""}]}},
        {"message": {"content": [{"type": "text", "text": "   "}]}},
        {"message": {"content": [{"type": "video", "url": "http://x"}]}},
        {"message": {"content": [{"type": "image"}]}},
        {"message": {"content": [{"type": "image", "base64": "AAAA"}]}},
        {"message": {"content": "just a string"}},
        {"message": {"content": [{"type": "text", "text": "ok"}]}, "controls": {"model_id": "not-a-uuid"}},
        {"message": {"content": [{"type": "text", "text": "ok"}]}, "controls": {"reasoning": {"effort": "max"}}},
        {"message": {"content": [{"type": "text", "text": "ok"}]}, "metadata": "nope"},
    ],
)
def test_bad_messages_are_400_and_change_nothing(api, session, body):
    response = post(api, session, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert not Message.objects.exists() and not Event.objects.exists()
    session.refresh_from_db()
    assert session.status == "pending"


def test_image_parts_and_controls_and_metadata_are_kept(api, session, django_capture_on_commit_callbacks):
    body = {
        "message": {
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "url": "https://example.com/cat.png"},
                {"type": "image", "base64": "iVBORw0KGgo=", "media_type": "image/png"},
            ]
        },
        "controls": {"reasoning": {"effort": "low"}},
        "metadata": {"source": "test"},
    }
    with django_capture_on_commit_callbacks(execute=False):
        message = post(api, session, body).json()
    assert len(message["content"]) == 3
    assert message["controls"] == {"reasoning": {"effort": "low"}}
    assert message["metadata"] == {"source": "test"}


def test_message_while_running_is_stored_without_a_second_turn(api, session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        post(api, session, text("one"))
        second = post(api, session, text("two"))
    assert second.status_code == 201 and second.json()["sequence"] == 2
    assert Turn.objects.filter(session=session).count() == 1


def test_message_on_failed_session_starts_a_new_turn(api, session, django_capture_on_commit_callbacks):
    Session.objects.filter(pk=session.pk).update(status="failed", error={"code": "x", "message": "y"})
    with django_capture_on_commit_callbacks(execute=False):
        assert post(api, session, text("again")).status_code == 201
    session.refresh_from_db()
    assert session.status == "running" and session.error is None
    assert Turn.objects.filter(session=session).count() == 1


def test_idempotency_key_returns_the_first_message(api, session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first = post(api, session, text("once"), HTTP_IDEMPOTENCY_KEY="k-1")
        again = post(api, session, text("once"), HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Message.objects.count() == 1 and Turn.objects.count() == 1


def test_list_messages_in_sequence_order(api, session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        for word in ("a", "b", "c"):
            post(api, session, text(word))
    body = api.get(f"/v1/agents/{session.agent_id}/sessions/{session.pk}/messages").json()
    assert [m["content"][0]["text"] for m in body["items"]] == ["a", "b", "c"]
    assert [m["sequence"] for m in body["items"]] == [1, 2, 3] and body["total"] == 3


def test_request_body_too_large_is_413(api, session, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post(api, session, text("x" * 5000))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_the_messages_events_are_published_before_its_turn_is_queued(seeded_tx, monkeypatch):
    """A worker takes a queued turn at once and publishes `turn.started`: the message's own events must be on
    their way first, or every stream of the session sees a gap and goes back to the log. (Real commits: the
    hooks run when the request's transaction ends, as in production.)"""
    session = make_session(make_agent())
    order = []
    monkeypatch.setattr(live, "publish_many", lambda items: order.extend(event["type"] for _, event in items))
    monkeypatch.setattr(celery_app, "send_task", lambda *args, **kwargs: order.append("queued"))
    assert post(APIClient(), session, text("Hello")).status_code == 201
    assert order == ["message.user", "session.status", "queued"]
