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
        "tool_policy",
        "limits",
        "status",
        "created_at",
        "updated_at",
    }
    assert uuid.UUID(body["id"]).version == 7
    assert body["status"] == "active" and body["tags"] == ["a", "b"] and body["capabilities"] == []
    assert body["tool_policy"] == {} and body["limits"] == {}
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
        ({"name": ""}, "name"),
    ],
)
def test_create_rejects_bad_input_and_stores_nothing(api, overrides, field):
    response = api.post("/v1/agents", {**AGENT, **overrides}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert Agent.objects.count() == 0


def test_unknown_fields_are_ignored_not_a_400(api):
    response = api.post("/v1/agents", {**AGENT, "unknown_field": 1, "temperature": 0.2}, format="json")
    assert response.status_code == 201
    assert "unknown_field" not in response.json() and "temperature" not in response.json()


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


POLICY = {"web_fetch": "ask", "*": "auto", "not_a_tool_it_has": "ask"}
LIMITS = {"max_cost_usd_per_turn": 0.25, "max_tokens_per_turn": 20000}


def test_tool_policy_and_limits_round_trip_on_create_get_and_list(api):
    agent = create(api, tool_policy=POLICY, limits=LIMITS)
    assert (agent["tool_policy"], agent["limits"]) == (POLICY, LIMITS)
    got = api.get(f"/v1/agents/{agent['id']}").json()
    assert (got["tool_policy"], got["limits"]) == (POLICY, LIMITS)
    listed = api.get("/v1/agents").json()["items"][0]
    assert (listed["tool_policy"], listed["limits"]) == (POLICY, LIMITS)
    stored = Agent.objects.get(pk=agent["id"])
    assert (stored.tool_policy, stored.limits) == (POLICY, LIMITS)


def test_patch_replaces_tool_policy_and_limits_and_empty_objects_clear_them(api):
    agent = create(api, tool_policy={"add": "ask"}, limits={"max_tokens_per_turn": 5})
    url = f"/v1/agents/{agent['id']}"
    body = api.patch(url, {"tool_policy": POLICY, "limits": {"max_cost_usd_per_turn": 2}}, format="json").json()
    assert body["tool_policy"] == POLICY and body["limits"] == {"max_cost_usd_per_turn": 2}  # replaced, not merged
    assert api.get(url).json()["limits"] == {"max_cost_usd_per_turn": 2}
    body = api.patch(url, {"limits": {"max_cost_usd_per_turn": None, "max_tokens_per_turn": None}}, format="json")
    assert body.json()["limits"] == {"max_cost_usd_per_turn": None, "max_tokens_per_turn": None}  # null: no limit
    body = api.patch(url, {"tool_policy": {}, "limits": {}}, format="json").json()
    assert body["tool_policy"] == {} and body["limits"] == {}
    assert api.patch(url, {"name": "Other"}, format="json").json()["tool_policy"] == {}


def test_tool_policy_takes_200_entries_and_names_of_128_characters(api):
    policy = {f"tool_{i}": "ask" for i in range(199)} | {"x" * 128: "auto"}
    assert create(api, tool_policy=policy)["tool_policy"] == policy


BAD_TOOL_POLICIES = [
    ["ask"],
    "ask",
    None,
    {"add": "never"},
    {"add": "ASK"},
    {"add": True},
    {"add": None},
    {"add": {"mode": "ask"}},
    {"": "ask"},
    {"x" * 129: "ask"},
    {f"tool_{i}": "ask" for i in range(201)},
]

BAD_AGENT_LIMITS = [
    [],
    "100",
    None,
    {"max_tokens": 10},
    {"max_cost_usd_per_turn": 1, "budget": 2},
    {"max_cost_usd_per_turn": 0},
    {"max_cost_usd_per_turn": -0.5},
    {"max_cost_usd_per_turn": "1.5"},
    {"max_cost_usd_per_turn": True},
    {"max_tokens_per_turn": 0},
    {"max_tokens_per_turn": -3},
    {"max_tokens_per_turn": 1.5},
    {"max_tokens_per_turn": 100.0},
    {"max_tokens_per_turn": "100"},
    {"max_tokens_per_turn": True},
    {"max_tokens_per_turn": [100]},
]

BAD_INPUT = [("tool_policy", v) for v in BAD_TOOL_POLICIES] + [("limits", v) for v in BAD_AGENT_LIMITS]


@pytest.mark.parametrize("field,value", BAD_INPUT)
def test_create_rejects_a_bad_tool_policy_or_limits(api, field, value):
    response = api.post("/v1/agents", {**AGENT, field: value}, format="json")
    assert response.status_code == 400 and error_code(response) == "validation_error"
    details = response.json()["error"]["details"]
    assert list(details) == [field] and details[field]
    assert Agent.objects.count() == 0


@pytest.mark.parametrize("field,value", BAD_INPUT)
def test_patch_rejects_a_bad_tool_policy_or_limits_and_keeps_the_stored_one(api, field, value):
    agent = create(api, tool_policy={"add": "ask"}, limits={"max_tokens_per_turn": 5})
    response = api.patch(f"/v1/agents/{agent['id']}", {field: value}, format="json")
    assert response.status_code == 400 and list(response.json()["error"]["details"]) == [field]
    stored = Agent.objects.get(pk=agent["id"])
    assert (stored.tool_policy, stored.limits) == ({"add": "ask"}, {"max_tokens_per_turn": 5})


def test_the_errors_say_which_entry_is_wrong_without_echoing_a_long_name(api):
    policy = {"add": "never", "y" * 5000: "ask", "divide": "auto"}
    details = api.post("/v1/agents", {**AGENT, "tool_policy": policy}, format="json").json()["error"]["details"]
    assert len(details["tool_policy"]) == 2 and details["tool_policy"][0] == '\'add\': must be "auto" or "ask".'
    assert "at most 128 characters" in details["tool_policy"][1] and len(details["tool_policy"][1]) < 200
    limits = {"max_tokens_per_turn": 0, "budget": 1}
    details = api.post("/v1/agents", {**AGENT, "limits": limits}, format="json").json()["error"]["details"]
    assert details["limits"] == [
        "Unknown limit 'budget'; the limits are max_cost_usd_per_turn, max_tokens_per_turn.",
        "max_tokens_per_turn: must be a whole number above 0, or null (no limit).",
    ]


def test_many_unknown_limits_make_one_short_message(api):
    limits = {f"limit_{i}": 1 for i in range(10_000)}
    details = api.post("/v1/agents", {**AGENT, "limits": limits}, format="json").json()["error"]["details"]
    assert details["limits"] == [
        "Unknown limit 'limit_0', 'limit_1', 'limit_2' and 9997 more; "
        "the limits are max_cost_usd_per_turn, max_tokens_per_turn."
    ]


def test_the_openapi_document_shows_tool_policy_and_limits(api):
    schemas = api.get("/api-doc/openapi.json").json()["components"]["schemas"]
    for name in ("Agent", "AgentInputRequest", "PatchedAgentInputRequest"):
        fields = schemas[name]["properties"]
        assert fields["tool_policy"]["additionalProperties"]["enum"] == ["auto", "ask"]
        assert fields["tool_policy"]["maxProperties"] == 200
        assert set(fields["limits"]["properties"]) == {"max_cost_usd_per_turn", "max_tokens_per_turn"}
        assert fields["limits"]["additionalProperties"] is False
