import litellm
import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from agents import provider_types, secrets
from agents.models import LlmModel, LlmProvider

KEY = "sk-test-provider-key-123456"


def create_provider(api, **overrides):
    body = {"name": "Local", "provider_type": "openai_compatible", "base_url": "http://127.0.0.1:1/v1", **overrides}
    return api.post("/v1/llm-providers", body, format="json")


def test_create_provider_with_key_stores_it_encrypted_and_never_returns_it(api):
    response = create_provider(api, api_key=KEY)
    assert response.status_code == 201
    body = response.json()
    assert body["api_key_set"] is True and "api_key" not in body and KEY not in response.content.decode()
    assert set(body) == {
        "id",
        "name",
        "provider_type",
        "base_url",
        "api_key_set",
        "settings",
        "status",
        "is_default",
        "created_at",
        "updated_at",
    }
    stored = LlmProvider.objects.get(pk=body["id"])
    assert KEY not in stored.api_key_encrypted and secrets.decrypt(stored.api_key_encrypted) == KEY
    for path in ("/v1/llm-providers", f"/v1/llm-providers/{body['id']}"):
        assert KEY not in api.get(path).content.decode()


def test_provider_key_without_an_encryption_key_is_a_400_and_nothing_is_stored(api, settings):
    settings.SECRETS_ENCRYPTION_KEY = ""
    before = LlmProvider.objects.count()
    response = create_provider(api, api_key=KEY)
    assert response.status_code == 400 and "api_key" in response.json()["error"]["details"]
    assert LlmProvider.objects.count() == before
    assert create_provider(api).status_code == 201  # without a key it is fine


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"provider_type": "nonsense"}, "provider_type"),
        ({"base_url": None}, "base_url"),
        ({"base_url": "not a url"}, "base_url"),
        ({"name": ""}, "name"),
        ({"is_default": "yes"}, "is_default"),
    ],
)
def test_provider_validation(api, overrides, field):
    response = create_provider(api, **overrides)
    assert response.status_code == 400 and field in response.json()["error"]["details"]


def test_litellm_and_our_provider_types_are_accepted(api):
    for provider_type in ("openai", "anthropic", "azure", "gemini", "ollama", "llmsim"):
        assert create_provider(api, provider_type=provider_type, base_url=None).status_code == 201


def test_provider_patch_key_rotation_and_delete(api):
    provider = create_provider(api, api_key=KEY).json()
    url = f"/v1/llm-providers/{provider['id']}"
    assert api.patch(url, {"name": "Renamed", "settings": {"timeout": 5}}, format="json").json()["name"] == "Renamed"
    assert api.patch(url, {"api_key": None}, format="json").json()["api_key_set"] is False
    assert api.patch(url, {"api_key": "sk-new-key-7890"}, format="json").json()["api_key_set"] is True
    assert api.patch(url, {"status": "disabled"}, format="json").json()["status"] == "disabled"
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404


def test_models_crud_and_the_one_global_default(api):
    provider = create_provider(api).json()
    models_url = f"/v1/llm-providers/{provider['id']}/models"
    response = api.post(models_url, {"model_id": "m1", "display_name": "M one"}, format="json")
    assert response.status_code == 201
    model = response.json()
    assert set(model) == {
        "id",
        "provider_id",
        "model_id",
        "display_name",
        "is_default",
        "status",
        "capabilities",
        "profile",
        "settings",
        "created_at",
        "updated_at",
    }
    assert model["settings"] == {}
    assert api.post(models_url, {"model_id": "m1"}, format="json").status_code == 409
    assert api.get(models_url).json()["total"] == 1
    assert api.get("/v1/llm-models").json()["total"] == LlmModel.objects.count()
    old_default = LlmModel.objects.get(is_default=True)
    assert api.patch(f"/v1/llm-models/{model['id']}", {"is_default": True}, format="json").json()["is_default"] is True
    assert list(LlmModel.objects.filter(is_default=True).values_list("pk", flat=True)) == [
        LlmModel.objects.get(model_id="m1").pk
    ]
    assert api.patch(f"/v1/llm-models/{model['id']}", {"is_default": False}, format="json").status_code == 409
    assert api.delete(f"/v1/llm-models/{model['id']}").status_code == 409
    assert api.delete(f"/v1/llm-providers/{provider['id']}").status_code == 409
    api.patch(f"/v1/llm-models/{old_default.pk}", {"is_default": True}, format="json")
    assert api.delete(f"/v1/llm-models/{model['id']}").status_code == 204
    assert api.get(f"/v1/llm-models/{model['id']}").status_code == 404


def test_model_validation(api):
    provider = create_provider(api).json()
    url = f"/v1/llm-providers/{provider['id']}/models"
    assert api.post(url, {}, format="json").status_code == 400
    assert api.post(url, {"model_id": "x", "status": "weird"}, format="json").status_code == 400
    assert (
        api.post(
            "/v1/llm-providers/01a22543-52e0-7c75-be76-9ac0f9022d11/models", {"model_id": "x"}, format="json"
        ).status_code
        == 404
    )


def test_static_provider_list_matches_litellm():

    theirs = {p.value if hasattr(p, "value") else p for p in litellm.provider_list}
    # registering llmsim as a custom provider (runner.llm.library) adds it to litellm's list at run time
    assert provider_types.LITELLM_TYPES == theirs - provider_types.EVERRUNS_TYPES


def test_rotation_re_encrypts_with_the_new_key(seeded, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEY = old
    provider = LlmProvider.objects.create(name="p", provider_type="openai", api_key_encrypted=secrets.encrypt(KEY))
    settings.SECRETS_ENCRYPTION_KEY, settings.SECRETS_ENCRYPTION_KEY_PREVIOUS = new, [old]
    assert secrets.decrypt(provider.api_key_encrypted) == KEY  # still readable through the previous key
    call_command("rotate_secrets")
    provider.refresh_from_db()
    settings.SECRETS_ENCRYPTION_KEY_PREVIOUS = []
    assert secrets.decrypt(provider.api_key_encrypted) == KEY  # readable with the new key alone
    settings.SECRETS_ENCRYPTION_KEY = old
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(provider.api_key_encrypted)
    with pytest.raises(CommandError):
        call_command("rotate_secrets")


def test_admin_stores_the_key_encrypted_and_never_renders_it(client, seeded):

    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    response = client.post(
        "/admin/agents/llmprovider/add/",
        {
            "name": "Admin-made",
            "provider_type": "openai",
            "api_key": KEY,
            "settings": "{}",
            "status": "active",
            "models-TOTAL_FORMS": "0",
            "models-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    provider = LlmProvider.objects.get(name="Admin-made")
    assert secrets.decrypt(provider.api_key_encrypted) == KEY
    page = client.get(f"/admin/agents/llmprovider/{provider.pk}/change/").content.decode()
    assert KEY not in page and provider.api_key_encrypted not in page


def test_a_models_settings_carry_its_context_window_and_a_bad_one_changes_nothing(api):
    provider = create_provider(api).json()
    models_url = f"/v1/llm-providers/{provider['id']}/models"
    model = api.post(models_url, {"model_id": "m-window", "settings": {"context_window": 8192}}, format="json").json()
    assert model["settings"] == {"context_window": 8192}
    url = f"/v1/llm-models/{model['id']}"
    for bad in (-5, 50, "big", True, 1.5):
        response = api.patch(url, {"settings": {"context_window": bad}}, format="json")
        assert response.status_code == 400 and "settings" in response.json()["error"]["details"], bad
    assert api.get(url).json()["settings"] == {"context_window": 8192}
    assert api.patch(url, {"settings": None}, format="json").json()["settings"] == {}
