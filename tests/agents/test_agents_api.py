import uuid

import pytest

from agents.models import Agent, LlmModel

AGENT = {"name": "Helper", "system_prompt": "Be helpful.", "description": "d", "tags": ["a", "b"]}


def create(api, **overrides):
    response = api.post("/v1/agents", {**AGENT, **overrides}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def error_code(response):
    return response.json()["error"]["code"]


def test_create_returns_the_agent_with_all_fields(api):
    body = create(api)
    assert set(body) == {
        "id",
        "name",
        "description",
        "system_prompt",
        "tags",
        "capabilities",
        "default_model_id",
        "max_iterations",
        "status",
        "created_at",
        "updated_at",
    }
    assert uuid.UUID(body["id"]).version == 7
    assert body["status"] == "active" and body["tags"] == ["a", "b"] and body["capabilities"] == []
    assert body["default_model_id"] is None and body["created_at"].endswith("Z")


def test_create_requires_name_and_system_prompt(api):
    response = api.post("/v1/agents", {}, format="json")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert set(response.json()["error"]["details"]) == {"name", "system_prompt"}
    assert Agent.objects.count() == 0


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"name": "x" * 256}, "name"),
        ({"tags": [f"t{i}" for i in range(51)]}, "tags"),
        ({"tags": "notalist"}, "tags"),
        ({"capabilities": ["no_such_capability"]}, "capabilities"),
        ({"default_model_id": str(uuid.uuid4())}, "default_model_id"),
        ({"system_prompt": "x" * (1024 * 1024 + 1)}, "system_prompt"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"name": ""}, "name"),
    ],
)
def test_create_rejects_bad_input_and_stores_nothing(api, overrides, field):
    response = api.post("/v1/agents", {**AGENT, **overrides}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert Agent.objects.count() == 0


def test_malformed_json_is_a_400_envelope(api):
    response = api.generic("POST", "/v1/agents", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


def test_non_object_body_is_a_400(api):
    response = api.post("/v1/agents", [1, 2], format="json")
    assert response.status_code == 400


def test_wrong_content_type_is_a_415(api):
    response = api.generic("POST", "/v1/agents", "name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"


def test_get_unknown_and_non_uuid_ids_are_404(api):
    assert error_code(api.get(f"/v1/agents/{uuid.uuid4()}")) == "not_found"
    response = api.get("/v1/agents/not-a-uuid")
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_method_not_allowed_is_a_405_envelope(api):
    response = api.put("/v1/agents", {}, format="json")
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"


def test_list_is_newest_first_with_envelope_and_pagination(api):
    ids = [create(api, name=f"a{i}")["id"] for i in range(3)]
    body = api.get("/v1/agents").json()
    assert [a["id"] for a in body["items"]] == ids[::-1]
    assert body["total"] == 3 and body["limit"] == 50 and body["offset"] == 0
    page = api.get("/v1/agents?limit=1&offset=1").json()
    assert [a["id"] for a in page["items"]] == [ids[1]] and page["total"] == 3
    assert api.get("/v1/agents?limit=100000").json()["limit"] == 500
    assert api.get("/v1/agents?limit=abc").status_code == 400
    assert api.get("/v1/agents?offset=-1").status_code == 400
    assert api.get("/v1/agents?offset=99999999999999999999999").status_code == 400
    assert api.get("/v1/agents?limit=1&limit=2").status_code == 400
    assert api.get("/v1/agents?limit=%EF%BC%91").status_code == 400  # a full-width digit


def test_list_filters_status_tag_and_search(api):
    kept = create(api, name="Alpha searcher", tags=["red"])
    create(api, name="Beta", tags=["blue"])
    archived = create(api, name="Gamma", tags=["red"])
    assert api.delete(f"/v1/agents/{archived['id']}").status_code == 204
    assert [a["id"] for a in api.get("/v1/agents?tag=red").json()["items"]] == [kept["id"]]
    assert [a["id"] for a in api.get("/v1/agents?search=search").json()["items"]] == [kept["id"]]
    assert [a["id"] for a in api.get("/v1/agents?status=archived").json()["items"]] == [archived["id"]]
    assert api.get("/v1/agents?status=all").json()["total"] == 3
    assert api.get("/v1/agents?status=bogus").status_code == 400
    assert api.get("/v1/agents?status=").status_code == 400


def test_patch_updates_given_fields_only(api):
    agent = create(api)
    model = LlmModel.objects.get(is_default=True)
    response = api.patch(
        f"/v1/agents/{agent['id']}", {"name": "Renamed", "default_model_id": str(model.pk)}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed" and body["system_prompt"] == "Be helpful."
    assert body["default_model_id"] == str(model.pk)
    assert api.patch(f"/v1/agents/{agent['id']}", {"name": ""}, format="json").status_code == 400
    assert api.get(f"/v1/agents/{agent['id']}").json()["name"] == "Renamed"


def test_patch_status_archives_and_reactivates(api):
    agent = create(api)
    assert api.patch(f"/v1/agents/{agent['id']}", {"status": "archived"}, format="json").json()["status"] == "archived"
    assert api.patch(f"/v1/agents/{agent['id']}", {"status": "active"}, format="json").json()["status"] == "active"


def test_delete_archives_then_second_delete_is_404(api):
    agent = create(api)
    assert api.delete(f"/v1/agents/{agent['id']}").status_code == 204
    assert api.get(f"/v1/agents/{agent['id']}").json()["status"] == "archived"
    assert api.delete(f"/v1/agents/{agent['id']}").status_code == 404
    assert api.get("/v1/agents").json()["total"] == 0
