EXPECTED = {
    "noop": [],
    "current_time": ["get_current_time"],
    "test_math": ["add", "subtract", "multiply", "divide"],
    "test_weather": ["get_weather", "get_forecast"],
    "stateless_todo_list": ["write_todos"],
    "web_fetch": ["web_fetch"],
    "session_file_system": [
        "read_file",
        "write_file",
        "list_directory",
        "grep_files",
        "delete_file",
        "stat_file",
        "copy_file",
        "move_file",
    ],
}


def test_list_capabilities_with_their_tools(api):
    body = api.get("/v1/capabilities").json()
    assert body["total"] == len(EXPECTED)
    assert {c["id"]: [t["name"] for t in c["tools"]] for c in body["items"]} == EXPECTED


def test_get_one_capability_with_json_schemas(api):
    body = api.get("/v1/capabilities/test_math").json()
    assert set(body) == {"id", "name", "description", "status", "category", "system_prompt", "tools"}
    add = body["tools"][0]
    assert add["name"] == "add" and add["parameters"]["type"] == "object"
    assert set(add["parameters"]["required"]) == {"a", "b"}


def test_unknown_capability_is_404(api):
    response = api.get("/v1/capabilities/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_agent_capabilities_are_ordered_and_validated(api):
    body = {"name": "a", "system_prompt": "p", "capabilities": ["test_math", "current_time"]}
    agent = api.post("/v1/agents", body, format="json").json()
    assert agent["capabilities"] == ["test_math", "current_time"]
    assert (
        api.post("/v1/agents", {**body, "capabilities": ["test_math", "test_math"]}, format="json").status_code == 400
    )
    response = api.patch(f"/v1/agents/{agent['id']}", {"capabilities": ["bogus"]}, format="json")
    assert response.status_code == 400 and "capabilities" in response.json()["error"]["details"]
