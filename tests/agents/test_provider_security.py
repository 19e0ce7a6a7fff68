"""Provider rules that keep keys and requests where they belong: a key stays with its endpoint, base URLs reach
only public addresses unless LLM_ALLOWED_HOSTS lists the host, and settings are bounded."""

import pytest
from django.contrib.auth import get_user_model

from agents import secrets
from agents.models import LlmProvider

KEY = "sk-provider-key-for-one-endpoint"


def create(api, **overrides):
    body = {"name": "Local", "provider_type": "openai_compatible", "base_url": "http://127.0.0.1:1/v1", **overrides}
    response = api.post("/v1/llm-providers", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def stored_key(provider_id) -> str:
    token = LlmProvider.objects.get(pk=provider_id).api_key_encrypted
    return secrets.decrypt(token) if token else ""


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "http://localhost:2/v1"},
        {"base_url": "http://127.0.0.1:1/v2"},
        {"provider_type": "openai"},
        {"provider_type": "openai", "base_url": None},
    ],
)
def test_a_new_base_url_or_type_drops_the_stored_key(api, change):
    provider = create(api, api_key=KEY)
    response = api.patch(f"/v1/llm-providers/{provider['id']}", change, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["api_key_set"] is False
    assert stored_key(provider["id"]) == ""


def test_a_new_key_in_the_same_request_goes_with_the_new_base_url(api):
    provider = create(api, api_key=KEY)
    response = api.patch(
        f"/v1/llm-providers/{provider['id']}",
        {"base_url": "http://localhost:2/v1", "api_key": "sk-the-new-endpoints-key"},
        format="json",
    )
    assert response.json()["api_key_set"] is True
    assert stored_key(provider["id"]) == "sk-the-new-endpoints-key"


@pytest.mark.parametrize(
    "change", [{"name": "Renamed"}, {"status": "disabled"}, {"settings": {"timeout": 30}}, {"base_url": None}]
)
def test_changes_that_keep_the_endpoint_keep_the_key(api, change):
    provider = create(api, provider_type="openai", base_url=None, api_key=KEY)
    response = api.patch(f"/v1/llm-providers/{provider['id']}", change, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["api_key_set"] is True and stored_key(provider["id"]) == KEY


def test_the_admin_drops_the_key_when_the_base_url_changes(client, api):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    provider = create(api, api_key=KEY)
    form = {
        "name": "Local",
        "provider_type": "openai_compatible",
        "settings": "{}",
        "status": "active",
        "models-TOTAL_FORMS": "0",
        "models-INITIAL_FORMS": "0",
    }
    url = f"/admin/agents/llmprovider/{provider['id']}/change/"
    assert client.post(url, {**form, "base_url": "http://127.0.0.1:1/v1", "name": "Kept"}).status_code == 302
    assert stored_key(provider["id"]) == KEY  # nothing about the endpoint changed
    assert client.post(url, {**form, "base_url": "http://localhost:2/v1"}).status_code == 302
    assert stored_key(provider["id"]) == ""
    response = client.post(url, {**form, "base_url": "http://localhost:3/v1", "api_key": "sk-admin-new-key"})
    assert response.status_code == 302
    assert stored_key(provider["id"]) == "sk-admin-new-key"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://10.0.0.5:8000/v1",
        "http://192.168.1.20/v1",
        "http://169.254.169.254/latest",
        "http://metadata.google.internal/v1",
        "http://[::1]:8000/v1",
        "http://[::ffff:127.0.0.2]/v1",
        "http://127.0.0.2:8000/v1",
        "http://0.0.0.0:8000/v1",
    ],
)
def test_a_base_url_on_a_non_public_address_is_a_400_naming_the_setting(api, base_url):
    response = api.post(
        "/v1/llm-providers", {"name": "x", "provider_type": "openai_compatible", "base_url": base_url}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "LLM_ALLOWED_HOSTS" in " ".join(error["details"]["base_url"])


def test_a_patch_to_a_non_public_base_url_is_a_400_and_changes_nothing(api):
    provider = create(api, api_key=KEY)
    response = api.patch(f"/v1/llm-providers/{provider['id']}", {"base_url": "http://10.1.2.3/v1"}, format="json")
    assert response.status_code == 400 and "LLM_ALLOWED_HOSTS" in response.content.decode()
    stored = LlmProvider.objects.get(pk=provider["id"])
    assert stored.base_url == "http://127.0.0.1:1/v1" and secrets.decrypt(stored.api_key_encrypted) == KEY


def test_llm_allowed_hosts_lets_an_operator_allow_a_private_server(api, settings):
    settings.LLM_ALLOWED_HOSTS = ["localhost:11434", "10.0.0.5"]
    for allowed in ("http://localhost:11434", "http://10.0.0.5:8000/v1", "http://10.0.0.5/v1"):
        create(api, base_url=allowed)
    response = api.post(
        "/v1/llm-providers",
        {"name": "x", "provider_type": "ollama", "base_url": "http://localhost:11435"},  # another port
        format="json",
    )
    assert response.status_code == 400 and "LLM_ALLOWED_HOSTS" in response.content.decode()


def test_a_type_whose_default_endpoint_is_local_needs_its_host_allowed(api, settings, monkeypatch):
    """Without a base_url, an ollama provider calls http://localhost:11434 on the worker's host."""
    settings.LLM_ALLOWED_HOSTS = []
    body = {"name": "o", "provider_type": "ollama"}
    response = api.post("/v1/llm-providers", body, format="json")
    assert response.status_code == 400
    message = " ".join(response.json()["error"]["details"]["base_url"])
    assert "http://localhost:11434" in message and "LLM_ALLOWED_HOSTS" in message
    settings.LLM_ALLOWED_HOSTS = ["localhost:11434"]
    assert api.post("/v1/llm-providers", body, format="json").status_code == 201
    settings.LLM_ALLOWED_HOSTS = []
    monkeypatch.setenv("OLLAMA_API_BASE", "http://10.0.0.7:11434")  # the operator's own choice
    assert api.post("/v1/llm-providers", body, format="json").status_code == 201


def test_a_base_url_that_is_not_http_is_a_400(api):
    response = api.post(
        "/v1/llm-providers", {"name": "x", "provider_type": "openai", "base_url": "ftp://example.com/"}, format="json"
    )
    assert response.status_code == 400 and "base_url" in response.json()["error"]["details"]


def test_the_admin_refuses_a_non_public_base_url(client, seeded):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    response = client.post(
        "/admin/agents/llmprovider/add/",
        {
            "name": "Sneaky",
            "provider_type": "openai",
            "base_url": "http://169.254.169.254/v1",
            "settings": "{}",
            "status": "active",
            "models-TOTAL_FORMS": "0",
            "models-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200 and "LLM_ALLOWED_HOSTS" in response.content.decode()
    assert not LlmProvider.objects.filter(name="Sneaky").exists()


@pytest.mark.parametrize(
    "settings_value",
    [
        {"timeout": 601},
        {"timeout": 10**9},
        {"timeout": -1},
        {"timeout": "60"},
        {"timeout": True},
        {"latency_ms": 600_001},
        {"latency_ms": -5},
        {"tokens_per_second": 0.001},
    ],
)
def test_provider_settings_out_of_bounds_are_a_400(api, settings_value):
    response = api.post(
        "/v1/llm-providers", {"name": "x", "provider_type": "llmsim", "settings": settings_value}, format="json"
    )
    assert response.status_code == 400, response.content
    (key,) = settings_value
    assert key in " ".join(response.json()["error"]["details"]["settings"])


def test_provider_settings_within_bounds_are_stored(api):
    within = {"timeout": 600, "latency_ms": 600_000, "tokens_per_second": 5, "other": "kept"}
    assert create(api, provider_type="llmsim", base_url=None, settings=within)["settings"] == within
    provider = create(api, provider_type="llmsim", base_url=None)
    response = api.patch(f"/v1/llm-providers/{provider['id']}", {"settings": {"latency_ms": 10**7}}, format="json")
    assert response.status_code == 400 and "latency_ms" in response.content.decode()
