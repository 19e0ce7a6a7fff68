"""Clients written for upstream Everruns (at the time of the reference notebook) work unchanged: one test per
difference the contract names ("Upstream compatibility (seed era)", "Conventions"), through HTTP, with the
requests upstream's own integration tests (crates/everruns-api/tests/integration_test.rs) send."""

import json
import os
import subprocess
import sys

import pytest

from agents import model_profiles
from agents.models import Agent, LlmModel, LlmProvider
from everruns.api.keys import api_key_create
from sessions.log import append_message
from tests.factories import make_agent, make_session
from tests.processes import ROOT

PROVIDERS = "/v1/llm-providers"


def create_provider(api, **body) -> dict:
    response = api.post(PROVIDERS, {"name": "Test OpenAI Provider", "provider_type": "openai", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def create_model(api, provider: dict, **body) -> dict:
    response = api.post(f"{PROVIDERS}/{provider['id']}/models", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_every_list_carries_its_array_as_data_beside_items(api):
    session = make_session()
    append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": "hi"}])
    api_key_create(name="listed", scope="admin")
    base = f"/v1/agents/{session.agent_id}/sessions"
    lists = [
        "/v1/agents",
        base,
        f"{base}/{session.pk}/messages",
        f"{base}/{session.pk}/events",
        f"{base}/{session.pk}/fs",
        "/v1/capabilities",
        PROVIDERS,
        "/v1/llm-models",
        f"{PROVIDERS}/{LlmModel.objects.get(is_default=True).provider_id}/models",
        "/v1/api-keys",
    ]
    for path in lists:
        body = api.get(path).json()
        assert {"items", "data", "total", "limit", "offset"} <= set(body), path
        assert body["data"] == body["items"], path
        assert path.endswith("/fs") or body["data"], path  # the session's files are the one empty list here


def test_unknown_request_fields_are_ignored_and_known_bad_values_still_400(api):
    agent = api.post(
        "/v1/agents",
        {"name": "Test Agent", "system_prompt": "You are a helpful assistant", "model_settings": {"temperature": 1}},
        format="json",
    )
    assert agent.status_code == 201 and "model_settings" not in agent.json()
    sessions = f"/v1/agents/{agent.json()['id']}/sessions"
    session = api.post(sessions, {"title": "Test Session", "workflow_id": "abc"}, format="json")
    assert session.status_code == 201
    message = api.post(
        f"{sessions}/{session.json()['id']}/messages",
        {"message": {"role": "user", "content": [{"type": "text", "text": "Hello!", "cache": True}]}, "stream": True},
        format="json",
    )
    assert message.status_code == 201 and message.json()["content"] == [{"type": "text", "text": "Hello!"}]
    bad = api.post("/v1/agents", {"name": ["not a string"], "system_prompt": "x", "unknown": 1}, format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["details"]) == {"name"}
    assert Agent.objects.count() == 1


def test_one_default_provider_whose_model_is_the_global_default(api):
    provider = create_provider(api, base_url="https://api.openai.com/v1", is_default=True)
    assert provider["is_default"] is True
    model = create_model(api, provider, model_id="gpt-5.2", display_name="GPT-5.2", capabilities=["chat", "vision"])
    # The default provider's first model takes the global default.
    assert model["is_default"] is True and str(LlmModel.objects.get(is_default=True).pk) == model["id"]
    second = create_provider(api, name="Second", is_default=True)
    assert api.get(f"{PROVIDERS}/{provider['id']}").json()["is_default"] is False
    assert LlmProvider.objects.filter(is_default=True).count() == 1
    other = create_model(api, second, model_id="gpt-4o")
    assert other["is_default"] is True  # the new default provider's first model
    # Making a model of another provider the global default hands the provider default on with it.
    assert api.patch(f"/v1/llm-models/{model['id']}", {"is_default": True}, format="json").status_code == 200
    assert api.get(f"{PROVIDERS}/{provider['id']}").json()["is_default"] is True
    assert api.get(f"{PROVIDERS}/{second['id']}").json()["is_default"] is False
    assert (
        api.post(PROVIDERS, {"name": "x", "provider_type": "openai", "is_default": "yes"}, format="json").status_code
        == 400
    )


def test_a_provider_made_the_default_moves_the_global_default_to_its_model(api):
    provider = create_provider(api, is_default=False)
    model = create_model(api, provider, model_id="gpt-4o", is_default=False)
    assert model["is_default"] is False
    assert api.patch(f"{PROVIDERS}/{provider['id']}", {"is_default": True}, format="json").json()["is_default"] is True
    assert str(LlmModel.objects.get(is_default=True).pk) == model["id"]


def test_models_take_and_return_capabilities(api):
    provider = create_provider(api)
    model = create_model(api, provider, model_id="test-model", display_name="Test", capabilities=["chat", "tools"])
    assert model["capabilities"] == ["chat", "tools"]
    changed = api.patch(f"/v1/llm-models/{model['id']}", {"capabilities": ["chat"]}, format="json").json()
    assert changed["capabilities"] == ["chat"]
    assert api.get(f"/v1/llm-models/{model['id']}").json()["capabilities"] == ["chat"]
    bad = api.patch(f"/v1/llm-models/{model['id']}", {"capabilities": "chat"}, format="json")
    assert bad.status_code == 400 and "capabilities" in bad.json()["error"]["details"]


def test_a_model_litellm_knows_has_a_profile_and_others_null(api):
    provider = create_provider(api, is_default=False)
    known = create_model(api, provider, model_id="gpt-4o", display_name="GPT-4o", capabilities=["chat", "vision"])
    unknown = create_model(api, provider, model_id="test-model", display_name="Test Model")
    raw = json.loads(model_profiles._map_path().read_bytes())["gpt-4o"]  # litellm's own file, read here too
    listed = {m["model_id"]: m for m in api.get("/v1/llm-models?limit=500").json()["data"]}
    assert listed["gpt-4o"]["profile"] == {
        "name": "gpt-4o",
        "family": "gpt-4o",
        "context_window": raw["max_input_tokens"],
        "max_output_tokens": raw["max_output_tokens"],
        "tool_call": True,
        "vision": True,
        "input_cost_per_token": raw["input_cost_per_token"],
        "output_cost_per_token": raw["output_cost_per_token"],
    }
    assert api.get(f"/v1/llm-models/{known['id']}").json()["profile"] == listed["gpt-4o"]["profile"]
    assert unknown["profile"] is None and listed["test-model"]["profile"] is None


def test_a_session_without_model_id_takes_the_agents_default_model(api):
    provider = create_provider(api, is_default=False)
    model = create_model(api, provider, model_id="test-model", display_name="Test Model", is_default=False)
    model2 = create_model(api, provider, model_id="test-model-2", display_name="Test Model 2", is_default=False)
    agent = api.post(
        "/v1/agents",
        {"name": "Agent with Default Model", "system_prompt": "Test agent", "default_model_id": model["id"]},
        format="json",
    ).json()
    sessions = f"/v1/agents/{agent['id']}/sessions"
    inherited = api.post(sessions, {"title": "Test Session"}, format="json").json()
    assert inherited["model_id"] == model["id"]
    assert api.get(f"{sessions}/{inherited['id']}").json()["model_id"] == model["id"]
    explicit = api.post(sessions, {"title": "Test Session 2", "model_id": model2["id"]}, format="json").json()
    assert explicit["model_id"] == model2["id"]
    # Taken at creation: a later change of the agent's default leaves the session as it was.
    api.patch(f"/v1/agents/{agent['id']}", {"default_model_id": model2["id"]}, format="json")
    assert api.get(f"{sessions}/{inherited['id']}").json()["model_id"] == model["id"]
    assert api.post(f"/v1/agents/{make_agent().pk}/sessions", {}, format="json").json()["model_id"] is None


def test_an_agents_capabilities_as_their_own_resource(api):
    agent = make_agent(capabilities=["noop"])
    url = f"/v1/agents/{agent.pk}/capabilities"
    assert api.get(url).json() == {"data": [{"capability_id": "noop", "position": 0}]}
    response = api.put(url, {"capabilities": ["current_time", "test_math"]}, format="json")
    expected = {
        "data": [{"capability_id": "current_time", "position": 0}, {"capability_id": "test_math", "position": 1}]
    }
    assert response.status_code == 200 and response.json() == expected
    assert api.get(url).json() == expected
    assert api.get(f"/v1/agents/{agent.pk}").json()["capabilities"] == ["current_time", "test_math"]
    unknown = api.put(url, {"capabilities": ["test_math", "no_such_capability"]}, format="json")
    assert unknown.status_code == 400 and "capabilities" in unknown.json()["error"]["details"]
    assert api.put(url, {}, format="json").status_code == 400
    assert api.get(url).json() == expected
    assert api.put(url, {"capabilities": []}, format="json").json() == {"data": []}


def test_health_carries_the_auth_mode_and_auth_config_answers_open(api, settings):
    assert api.get("/health").json()["auth_mode"] == "none"
    assert api.get("/v1/auth/config").json() == {
        "auth_mode": "none",
        "password_auth_enabled": False,
        "oauth_providers": [],
    }
    settings.AUTH_MODE = "api_key"
    assert api.get("/health").json()["auth_mode"] == "api_key"


@pytest.fixture
def fs(api):
    session = make_session()
    return f"/v1/agents/{session.agent_id}/sessions/{session.pk}/fs", session


def test_session_files_walk_upstreams_integration_test(api, fs):
    """upstream's test_session_filesystem, request for request."""
    fs_url, session = fs
    assert api.get(fs_url).json()["data"] == []
    file = api.post(f"{fs_url}/hello.txt", {"content": "Hello, World!", "encoding": "text"}, format="json")
    assert file.status_code == 201
    body = file.json()
    assert body["path"] == "/hello.txt" and body["is_directory"] is False and body["is_readonly"] is False
    assert body["session_id"] == str(session.pk) and body["id"] and body["size_bytes"] == 13
    assert api.get(f"{fs_url}/hello.txt").json()["content"] == "Hello, World!"
    stat = api.post(f"{fs_url}/_/stat", {"path": "/hello.txt"}, format="json")
    assert stat.status_code == 200 and stat.json()["path"] == "/hello.txt" and stat.json()["size_bytes"] == 13
    assert "content" not in stat.json() and stat.json()["is_directory"] is False
    assert api.put(f"{fs_url}/hello.txt", {"content": "Updated content"}, format="json").json()["content"] == (
        "Updated content"
    )
    directory = api.post(f"{fs_url}/docs", {"is_directory": True}, format="json")
    assert directory.status_code == 201 and directory.json()["is_directory"] is True
    nested = api.post(f"{fs_url}/src/main.rs", {"content": "fn main() {}"}, format="json")
    assert nested.status_code == 201 and nested.json()["path"] == "/src/main.rs"
    everything = api.get(f"{fs_url}?recursive=true").json()
    assert [f["path"] for f in everything["data"]] == ["/docs", "/hello.txt", "/src", "/src/main.rs"]
    assert [f["path"] for f in api.get(fs_url).json()["data"]] == ["/docs", "/hello.txt", "/src"]
    copied = api.post(f"{fs_url}/_/copy", {"src_path": "/hello.txt", "dst_path": "/hello-copy.txt"}, format="json")
    assert copied.status_code == 201 and copied.json()["content"] == "Updated content"
    moved = api.post(f"{fs_url}/_/move", {"src_path": "/hello-copy.txt", "dst_path": "/renamed.txt"}, format="json")
    assert moved.status_code == 200 and moved.json()["path"] == "/renamed.txt"
    assert api.get(f"{fs_url}/hello-copy.txt").status_code == 404
    grep = api.post(f"{fs_url}/_/grep", {"pattern": "main"}, format="json")
    assert grep.status_code == 200
    assert grep.json()["data"] == [{"path": "/src/main.rs", "line_number": 1, "line": "fn main() {}"}]
    deleted = api.delete(f"{fs_url}/renamed.txt")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": True}
    assert api.delete(f"{fs_url}/src?recursive=true").status_code == 200
    assert api.get(f"{fs_url}/src/main.rs").status_code == 404


def test_copy_and_move_take_src_and_dst_and_move_whole_directories(api, fs):
    fs_url, _ = fs
    api.post(f"{fs_url}/a/b/c.txt", {"content": "c"}, format="json")
    api.post(f"{fs_url}/a/d.txt", {"content": "d"}, format="json")
    assert api.post(f"{fs_url}/_/copy", {"src": "/a/d.txt", "dst": "/e/d.txt"}, format="json").status_code == 201
    moved = api.post(f"{fs_url}/_/move", {"src": "/a", "dst": "/z/a"}, format="json")
    assert moved.status_code == 200 and moved.json()["is_directory"] is True
    paths = [f["path"] for f in api.get(f"{fs_url}?recursive=true&limit=500").json()["data"]]
    assert paths == ["/e", "/e/d.txt", "/z", "/z/a", "/z/a/b", "/z/a/b/c.txt", "/z/a/d.txt"]
    assert api.get(f"{fs_url}/z/a/b/c.txt").json()["content"] == "c"
    refusals = [
        ("copy", {"src": "/z/a", "dst": "/y"}, 400),  # a directory is not copied
        ("copy", {"src": "/nope", "dst": "/y"}, 404),
        ("copy", {"src": "/e/d.txt", "dst": "/z/a/d.txt"}, 409),
        ("move", {"src": "/z", "dst": "/z/inside"}, 400),
        ("move", {"src": "/e/d.txt"}, 400),
        ("move", {"src": "/e/d.txt", "dst": "/_/x"}, 400),
    ]
    for action, body, status in refusals:
        response = api.post(f"{fs_url}/_/{action}", body, format="json")
        assert response.status_code == status, (action, body, response.content)
    assert api.post(f"{fs_url}/_/stat", {"path": "/nope"}, format="json").status_code == 404
    assert api.post(f"{fs_url}/_/grep", {"pattern": "("}, format="json").status_code == 400


def test_a_read_only_file_refuses_new_content_with_403(api, fs):
    fs_url, _ = fs
    created = api.post(f"{fs_url}/locked.txt", {"content": "keep", "is_readonly": True}, format="json")
    assert created.status_code == 201 and created.json()["is_readonly"] is True
    refused = api.put(f"{fs_url}/locked.txt", {"content": "changed"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert api.get(f"{fs_url}/locked.txt").json()["content"] == "keep"
    unlocked = api.put(f"{fs_url}/locked.txt", {"is_readonly": False}, format="json")
    assert unlocked.status_code == 200 and unlocked.json()["is_readonly"] is False
    assert api.put(f"{fs_url}/locked.txt", {"content": "changed"}, format="json").json()["content"] == "changed"


def test_one_put_may_write_a_writable_file_and_lock_it(api, fs):
    fs_url, _ = fs
    api.post(f"{fs_url}/notes.txt", {"content": "draft"}, format="json")
    locked = api.put(f"{fs_url}/notes.txt", {"content": "final", "is_readonly": True}, format="json")
    assert locked.status_code == 200 and locked.json()["is_readonly"] is True
    assert api.get(f"{fs_url}/notes.txt").json()["content"] == "final"
    assert api.put(f"{fs_url}/notes.txt", {"content": "again", "is_readonly": True}, format="json").status_code == 403


def test_deleting_a_non_empty_directory_without_recursive_is_a_400(api, fs):
    fs_url, _ = fs
    api.post(f"{fs_url}/dir/f.txt", {"content": "x"}, format="json")
    response = api.delete(f"{fs_url}/dir")
    assert response.status_code == 400 and "recursive" in response.json()["error"]["details"]
    assert api.get(f"{fs_url}/dir/f.txt").status_code == 200
    assert api.delete(f"{fs_url}/dir?recursive=true").json() == {"deleted": True}


def test_a_stream_token_opens_sse_like_events(api, settings):
    settings.AUTH_MODE = "api_key"
    _, secret = api_key_create(name="app")
    mine, other = make_session(), make_session()
    base = f"/v1/agents/{mine.agent_id}/sessions/{mine.pk}"
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    token = api.post(f"{base}/stream-token", {}, format="json").json()["token"]
    api.credentials()
    assert api.get(f"{base}/sse").status_code == 401
    opened = api.get(f"{base}/sse?token={token}")
    assert opened.status_code == 200 and opened["Content-Type"] == "text/event-stream"
    opened.close()
    assert api.get(f"/v1/agents/{other.agent_id}/sessions/{other.pk}/sse?token={token}").status_code == 401


def test_the_web_process_reads_profiles_without_importing_litellm():
    """litellm costs a web process 5 s and 200 MB: the profile comes from its JSON file alone."""
    code = (
        "import sys, django; django.setup(); from agents import model_profiles;"
        "p = model_profiles.profile('gpt-4o', provider_type='openai');"
        "assert p and p['tool_call'] and p['context_window'], p;"
        "assert model_profiles.profile('no-such-model', provider_type='openai') is None;"
        "assert 'litellm' not in sys.modules, 'litellm was imported'"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
