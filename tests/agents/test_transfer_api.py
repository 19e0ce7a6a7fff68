"""Agent export and import: Markdown with YAML front matter, through the API."""

import threading
import time

import pytest
import requests
import yaml

from agents.models import Agent, LlmModel
from tests.factories import make_agent, make_model


def export(api, agent_id):
    response = api.get(f"/v1/agents/{agent_id}/export")
    assert response.status_code == 200, response.content
    return response


def import_text(api, text: str, content_type="text/markdown"):
    return api.generic("POST", "/v1/agents/import", text.encode("utf-8"), content_type=content_type)


def front_matter(markdown: str) -> dict:
    _, front, _ = markdown.split("---\n", 2)
    return yaml.safe_load(front)


def test_export_is_markdown_with_the_settings_as_front_matter_and_the_prompt_as_body(api):
    model = make_model(model_id="export-model")
    agent = make_agent(
        name="Math tutor",
        description="Explains sums",
        tags=["demo", "math"],
        capabilities=["test_math", "current_time"],
        default_model_id=model.pk,
        max_iterations=4,
        system_prompt="You are a patient tutor.\n\n---\nShow your work.",
    )
    Agent.objects.filter(pk=agent.pk).update(tool_policy={"add": "ask"}, limits={"max_tokens_per_turn": 1000})
    response = export(api, agent.pk)
    assert response["Content-Type"].startswith("text/markdown")
    assert 'filename="Math-tutor.md"' in response["Content-Disposition"]
    text = response.content.decode()
    assert text.startswith("---\n")
    assert front_matter(text) == {
        "name": "Math tutor",
        "description": "Explains sums",
        "tags": ["demo", "math"],
        "capabilities": ["test_math", "current_time"],
        "tool_policy": {"add": "ask"},
        "limits": {"max_tokens_per_turn": 1000},
        "model": "export-model",
        "max_iterations": 4,
    }
    assert text.endswith("---\nYou are a patient tutor.\n\n---\nShow your work.")


def test_export_of_an_unknown_agent_is_a_json_404(api):
    response = api.get("/v1/agents/01890000-0000-7000-8000-000000000000/export")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_import_of_an_export_gives_the_same_agent_back(api):
    model = make_model(model_id="roundtrip-model")
    original = make_agent(
        name="Round trip: agent",
        description="multi\nline",
        tags=["x"],
        capabilities=["test_weather"],
        default_model_id=model.pk,
        system_prompt="  Leading spaces stay.\nSecond line\n",
    )
    response = import_text(api, export(api, original.pk).content.decode())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] != str(original.pk)
    assert body["name"] == "Round trip: agent" and body["description"] == "multi\nline"
    assert body["tags"] == ["x"] and body["capabilities"] == ["test_weather"]
    assert body["default_model_id"] == str(model.pk)
    assert body["system_prompt"] == "  Leading spaces stay.\nSecond line\n"
    assert body["status"] == "active"


def test_plain_text_becomes_the_system_prompt_of_an_agent_named_from_its_first_line(api):
    prompt = "\n# Travel planner\nYou plan trips.\nAsk about the budget first."
    response = import_text(api, prompt)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Travel planner"
    assert body["system_prompt"] == prompt
    assert body["capabilities"] == [] and body["default_model_id"] is None


def test_a_long_first_line_is_cut_to_the_longest_name(api):
    response = import_text(api, "x" * 300 + "\nrest")
    assert response.status_code == 201
    assert response.json()["name"] == "x" * 255


def test_unknown_capabilities_are_a_400(api):
    text = "---\nname: Bad\ncapabilities: [test_math, teleport]\n---\nPrompt"
    response = import_text(api, text)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "teleport" in str(response.json()["error"]["details"]["capabilities"])
    assert not Agent.objects.filter(name="Bad").exists()


def test_the_tool_policy_and_limits_of_a_file_follow_the_api_rules(api):
    ok = import_text(api, "---\nname: Asks\ntool_policy: {add: ask}\nlimits: {max_tokens_per_turn: 900}\n---\nP")
    assert ok.status_code == 201, ok.content
    assert ok.json()["tool_policy"] == {"add": "ask"} and ok.json()["limits"] == {"max_tokens_per_turn": 900}
    bad = import_text(api, "---\nname: Bad policy\ntool_policy: {add: sometimes}\nlimits: {max_turns: 2}\n---\nP")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["details"]) == {"tool_policy", "limits"}


def test_unknown_front_matter_fields_and_models_are_a_400(api):
    unknown_field = import_text(api, "---\nname: A\ntemperature: 2\n---\nPrompt")
    assert unknown_field.status_code == 400
    assert unknown_field.json()["error"]["details"] == {"temperature": ["Unknown field."]}
    unknown_model = import_text(api, "---\nname: A\nmodel: no-such-model\n---\nPrompt")
    assert unknown_model.status_code == 400
    assert "no-such-model" in unknown_model.json()["error"]["details"]["model"][0]
    assert not Agent.objects.filter(name="A").exists()


def test_a_model_name_served_by_several_providers_picks_the_default_first(api):
    default = LlmModel.objects.get(is_default=True)
    make_model(model_id=default.model_id)  # the same name on a second provider
    response = import_text(api, f"---\nmodel: {default.model_id}\n---\nPrompt")
    assert response.status_code == 201
    assert response.json()["default_model_id"] == str(default.pk)


def test_malformed_files_are_a_400(api):
    cases = {
        "---\nname: [unclosed\n---\nPrompt": "front_matter",
        "---\nname: A\nPrompt without a closing line": "front_matter",
        "---\n- a list\n---\nPrompt": "front_matter",
        "---\nname: &a x\ndescription: *a\n---\nPrompt": "front_matter",
        "---\nname: A\n---\n": "system_prompt",
        "   \n\n": "body",
        "nul \x00 byte": "body",
    }
    for text, field in cases.items():
        response = import_text(api, text)
        assert response.status_code == 400, text
        assert field in response.json()["error"]["details"], (text, response.json())


# Front matter that used to take PyYAML's pure-Python scanner from seconds to minutes, or that raised
# something other than a YAMLError (a 500): each a 400 naming the front matter, quickly.
HOSTILE_FRONT_MATTER = {
    "nested flow lists, 40 KB": "[" * 40_000,
    "nested flow mappings": "{a: " * 10_000,
    "nested block lists": "- " * 20_000 + "x",
    "nested block mappings": "".join(" " * i + f"k{i}:\n" for i in range(200)),
    "an alias bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)),
    "too many values": "tags: [" + ", ".join(["x"] * 6000) + "]",
    "a month 13": "name: 2001-13-14",
    "an int that is not one": "max_iterations: !!int zz",
    "a timestamp that is not one": "name: !!timestamp zz",
    "an unhashable key": "? [a]\n: b",
    "a set": "tags: !!set {x}",
    "binary data": "name: !!binary aGk=",
    "a date": "description: 2026-12-07",
}


@pytest.mark.parametrize("front", HOSTILE_FRONT_MATTER.values(), ids=HOSTILE_FRONT_MATTER.keys())
def test_hostile_front_matter_is_a_quick_400(api, front):
    started = time.monotonic()
    response = import_text(api, f"---\n{front}\n---\nPrompt")
    assert time.monotonic() - started < 2  # a regression guard (it took minutes), not a benchmark
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "validation_error" and list(error["details"]) == ["front_matter"], error
    assert not Agent.objects.exists()


@pytest.mark.e2e
def test_hostile_imports_at_once_leave_the_web_answering(seeded_tx, web):
    """Eight 40 KB nested imports at once (they kept a web process from answering /health for minutes)."""
    body = f"---\n{'[' * 40_000}\n---\nPrompt".encode()
    headers = {"Content-Type": "text/markdown"}
    statuses = []

    def post():
        statuses.append(requests.post(f"{web}/v1/agents/import", data=body, headers=headers, timeout=30).status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    health = requests.get(f"{web}/health", timeout=5)
    for thread in threads:
        thread.join()
    assert health.status_code == 200
    assert statuses == [400] * 8 and time.monotonic() - started < 10


def test_import_takes_markdown_only(api):
    response = api.post("/v1/agents/import", {"name": "A", "system_prompt": "P"}, format="json")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_import_reads_the_charset_of_the_content_type(api):
    body = "---\nname: Café\n---\nBonjour".encode("latin-1")
    response = api.generic("POST", "/v1/agents/import", body, content_type="text/markdown; charset=latin-1")
    assert response.status_code == 201
    assert response.json()["name"] == "Café"
    invalid = api.generic("POST", "/v1/agents/import", b"\xff\xfe", content_type="text/markdown")
    assert invalid.status_code == 400
