import uuid

from agents.models import LlmModel
from sessions.models import Event, Message, Session
from tests.factories import make_agent, make_session, text


def url(agent, session=None, tail=""):
    base = f"/v1/agents/{agent.pk}/sessions"
    return f"{base}/{session.pk}{tail}" if session else base


def test_create_with_empty_body_is_pending(api):
    agent = make_agent()
    response = api.post(url(agent), {}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending" and body["agent_id"] == str(agent.pk)
    assert body["usage"] == {"input_tokens": 0, "output_tokens": 0, "cost_usd": None}
    assert set(body) == {
        "id",
        "agent_id",
        "title",
        "tags",
        "model_id",
        "status",
        "error",
        "usage",
        "created_at",
        "updated_at",
    }
    assert api.post(url(agent), content_type="application/json").status_code == 201


def test_create_with_fields_and_bad_fields(api):
    agent = make_agent()
    model = LlmModel.objects.get(is_default=True)
    body = api.post(url(agent), {"title": "T", "tags": ["x"], "model_id": str(model.pk)}, format="json").json()
    assert body["title"] == "T" and body["tags"] == ["x"] and body["model_id"] == str(model.pk)
    response = api.post(url(agent), {"model_id": str(uuid.uuid4())}, format="json")
    assert response.status_code == 400 and "model_id" in response.json()["error"]["details"]
    assert api.post(url(agent), {"title": 5, "bogus": 1}, format="json").status_code == 400
    assert Session.objects.count() == 1


def test_create_on_unknown_agent_is_404_and_on_archived_agent_409(api):
    assert api.post(f"/v1/agents/{uuid.uuid4()}/sessions", {}, format="json").status_code == 404
    agent = make_agent()
    api.delete(f"/v1/agents/{agent.pk}")
    response = api.post(url(agent), {}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


def test_archived_agent_keeps_sessions_readable(api):
    agent = make_agent()
    session = make_session(agent)
    api.delete(f"/v1/agents/{agent.pk}")
    assert api.get(url(agent, session)).status_code == 200
    assert api.get(url(agent, session, "/messages")).status_code == 200
    assert api.post(url(agent, session, "/messages"), text("hi"), format="json").status_code == 409


def test_session_under_another_agent_is_404(api):
    session = make_session()
    other = make_agent()
    for tail in ("", "/messages", "/events"):
        assert api.get(url(other, session, tail)).status_code == 404
    assert api.delete(url(other, session)).status_code == 404
    assert Session.objects.filter(pk=session.pk).exists()


def test_list_get_patch(api):
    agent = make_agent()
    first, second = make_session(agent), make_session(agent)
    make_session()  # another agent's
    body = api.get(url(agent)).json()
    assert [s["id"] for s in body["items"]] == [str(second.pk), str(first.pk)] and body["total"] == 2
    response = api.patch(url(agent, first), {"title": "New", "tags": ["k"]}, format="json")
    assert response.status_code == 200 and response.json()["title"] == "New"
    assert api.patch(url(agent, first), {"status": "running"}, format="json").status_code == 400
    assert api.get(url(agent, first)).json()["status"] == "pending"


def test_delete_removes_messages_and_events(api, django_capture_on_commit_callbacks):
    agent = make_agent()
    session = make_session(agent)
    with django_capture_on_commit_callbacks(execute=False):
        assert api.post(url(agent, session, "/messages"), text("hello"), format="json").status_code == 201
    assert Message.objects.filter(session=session).exists()
    assert api.delete(url(agent, session)).status_code == 204
    assert not Message.objects.filter(session_id=session.pk).exists()
    assert not Event.objects.filter(session_id=session.pk).exists()
    assert api.get(url(agent, session)).status_code == 404
    assert api.delete(url(agent, session)).status_code == 404
