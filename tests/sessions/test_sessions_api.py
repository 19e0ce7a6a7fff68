import uuid

import pytest

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
        "limits",
        "status",
        "error",
        "usage",
        "created_at",
        "updated_at",
    }
    assert body["limits"] == {}
    assert api.post(url(agent), content_type="application/json").status_code == 201


def test_create_with_fields_and_bad_fields(api):
    agent = make_agent()
    model = LlmModel.objects.get(is_default=True)
    body = api.post(url(agent), {"title": "T", "tags": ["x"], "model_id": str(model.pk)}, format="json").json()
    assert body["title"] == "T" and body["tags"] == ["x"] and body["model_id"] == str(model.pk)
    response = api.post(url(agent), {"model_id": str(uuid.uuid4())}, format="json")
    assert response.status_code == 400 and "model_id" in response.json()["error"]["details"]
    assert api.post(url(agent), {"title": ["not a string"], "bogus": 1}, format="json").status_code == 400
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
    # `status` is not a field a client sets: ignored like any unknown field, and it changes nothing.
    assert api.patch(url(agent, first), {"status": "running"}, format="json").status_code == 200
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


LIMITS = {"max_cost_usd": 1.5, "max_tokens": 100000}


def test_limits_round_trip_on_create_get_list_and_patch(api):
    agent = make_agent()
    created = api.post(url(agent), {"limits": LIMITS}, format="json")
    assert created.status_code == 201 and created.json()["limits"] == LIMITS
    session = Session.objects.get(pk=created.json()["id"])
    assert session.limits == LIMITS
    assert api.get(url(agent, session)).json()["limits"] == LIMITS
    assert api.get(url(agent)).json()["items"][0]["limits"] == LIMITS
    patched = api.patch(url(agent, session), {"limits": {"max_tokens": 7, "max_cost_usd": None}}, format="json")
    assert patched.status_code == 200 and patched.json()["limits"] == {"max_tokens": 7, "max_cost_usd": None}
    assert (
        api.patch(url(agent, session), {"title": "Only the title"}, format="json").json()["limits"]["max_tokens"] == 7
    )
    assert api.patch(url(agent, session), {"limits": {}}, format="json").json()["limits"] == {}
    assert Session.objects.get(pk=session.pk).limits == {}


BAD_LIMITS = [
    [],
    "100",
    None,
    {"max_tokens_per_turn": 10},
    {"max_tokens": 10, "other": 1},
    {"max_cost_usd": 0},
    {"max_cost_usd": -1},
    {"max_cost_usd": "0.5"},
    {"max_cost_usd": False},
    {"max_tokens": 0},
    {"max_tokens": -1},
    {"max_tokens": 2.5},
    {"max_tokens": 10.0},
    {"max_tokens": "10"},
    {"max_tokens": True},
]


@pytest.mark.parametrize("limits", BAD_LIMITS)
def test_create_rejects_bad_limits(api, limits):
    response = api.post(url(make_agent()), {"limits": limits}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    assert list(response.json()["error"]["details"]) == ["limits"]
    assert not Session.objects.exists()


@pytest.mark.parametrize("limits", BAD_LIMITS)
def test_patch_rejects_bad_limits_and_keeps_the_stored_ones(api, limits):
    session = make_session(limits={"max_tokens": 5})
    response = api.patch(url(session.agent, session), {"limits": limits}, format="json")
    assert response.status_code == 400 and list(response.json()["error"]["details"]) == ["limits"]
    assert Session.objects.get(pk=session.pk).limits == {"max_tokens": 5}


def test_the_openapi_document_lists_every_session_status_and_the_limits(api):
    schemas = api.get("/api-doc/openapi.json").json()["components"]["schemas"]
    assert schemas["SessionStatusEnum"]["enum"] == ["pending", "running", "waiting", "failed"]
    assert schemas["Session"]["properties"]["status"] == {"$ref": "#/components/schemas/SessionStatusEnum"}
    limits = schemas["Session"]["properties"]["limits"]
    assert set(limits["properties"]) == {"max_cost_usd", "max_tokens"} and limits["additionalProperties"] is False
    assert schemas["SessionInputRequest"]["properties"]["limits"] == limits
    assert schemas["PatchedSessionInputRequest"]["properties"]["limits"] == limits
