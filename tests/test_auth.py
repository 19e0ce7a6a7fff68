"""AUTH_MODE=api_key: every /v1 route needs a live key of the right scope, decided before anything else."""

import contextlib
import re
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from agents.models import LlmProvider
from everruns.api.auth import OPEN_ROUTES
from everruns.api.keys import api_key_create, api_key_revoke
from everruns.models import ApiKey
from tests.factories import make_session, text
from tests.processes import ROOT

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def api_key_mode(settings, seeded):
    settings.AUTH_MODE = "api_key"
    settings.WRITE_RATE_LIMIT = 0  # these tests are about access, not rates


def client_with(secret: str | None) -> APIClient:
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _v1_patterns(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Every route of the URL conf under /v1, with a fresh UUID (or a word) in each parameter."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += _v1_patterns(entry, route)
        elif isinstance(entry, URLPattern) and route.startswith("v1/"):
            found.append(
                "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: "x/y.txt" if m[1] == "path" else str(uuid.uuid4()), route)
            )
    return found


def _documented() -> list[tuple[str, str]]:
    """(method, path) of every /v1 operation in the OpenAPI document, ids filled in."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    out = []
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item and path.startswith("/v1/"):
                out.append((method, re.sub(r"\{(\w+)\}", lambda m: str(uuid.uuid4()), path)))
    return out


ROUTES = _v1_patterns()
OPERATIONS = _documented()


def test_every_v1_route_of_the_url_conf_is_covered():
    assert len(ROUTES) >= 15 and all(r.startswith("/v1/") for r in ROUTES)


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("method", METHODS)
def test_every_route_without_a_key_is_a_401(api_key_mode, method, path):
    if (method.upper(), path) in OPEN_ROUTES:
        return  # test_the_auth_config_is_open_without_a_key
    response = getattr(client_with(None), method)(path)
    assert response.status_code == 401, (method, path, response.status_code)
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_documented_operation_refuses_wrong_keys(api_key_mode, method, path):
    if (method.upper(), path) in OPEN_ROUTES:
        return  # test_the_auth_config_is_open_without_a_key
    revoked, revoked_secret = api_key_create(name="revoked", scope="admin")
    api_key_revoke(key=revoked)
    expired, expired_secret = api_key_create(name="expired", scope="admin")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for secret in ("evr_notakeyatall0000", revoked_secret, expired_secret, "Basic abc"):
        response = getattr(client_with(secret), method)(path)
        assert response.status_code == 401, (method, path, secret[:8], response.status_code)
    _, agents_secret = api_key_create(name="agents", scope="agents")
    response = getattr(client_with(agents_secret), method)(path)
    admin_only = path.startswith(("/v1/api-keys", "/v1/webhooks")) or (
        path.startswith(("/v1/llm-providers", "/v1/llm-models", "/v1/mcp-servers")) and method != "get"
    )
    if admin_only:
        assert response.status_code == 403, (method, path, response.status_code)
        assert response.json()["error"]["code"] == "forbidden"
    else:
        assert response.status_code not in (401, 403), (method, path, response.status_code)


def test_the_auth_config_is_open_without_a_key(api_key_mode):
    for secret in (None, "evr_notakeyatall0000"):
        response = client_with(secret).get("/v1/auth/config")
        assert response.status_code == 200
        assert response.json() == {"auth_mode": "api_key", "password_auth_enabled": False, "oauth_providers": []}
    assert client_with(None).post("/v1/auth/config").status_code == 401  # only reading it is open


def test_an_agents_key_uses_agents_and_reads_providers(api_key_mode):
    _, secret = api_key_create(name="app", scope="agents")
    client = client_with(secret)
    agent = client.post("/v1/agents", {"name": "a", "system_prompt": "p"}, format="json")
    assert agent.status_code == 201
    session = client.post(f"/v1/agents/{agent.json()['id']}/sessions", {}, format="json").json()
    path = f"/v1/agents/{agent.json()['id']}/sessions/{session['id']}"
    assert client.post(f"{path}/messages", text("hi"), format="json").status_code == 201
    assert client.get("/v1/llm-providers").status_code == 200
    assert client.get("/v1/llm-models").status_code == 200
    assert client.post("/v1/llm-providers", {"name": "x", "provider_type": "openai"}, format="json").status_code == 403


def test_keys_are_created_listed_and_revoked_by_an_admin_key(api_key_mode):
    _, admin = api_key_create(name="root", scope="admin")
    client = client_with(admin)
    created = client.post("/v1/api-keys", {"name": "ci", "scope": "agents"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("evr_") and body["prefix"] == body["key"][:12] and body["scope"] == "agents"
    listed = client.get("/v1/api-keys").json()["items"]
    assert {k["name"] for k in listed} == {"root", "ci"}
    assert all("key" not in k for k in listed) and body["key"] not in str(listed)
    assert client_with(body["key"]).get("/v1/agents").status_code == 200
    assert client.delete(f"/v1/api-keys/{body['id']}").status_code == 204
    assert client_with(body["key"]).get("/v1/agents").status_code == 401
    assert client.delete(f"/v1/api-keys/{body['id']}").status_code == 404  # revoked already
    assert ApiKey.objects.get(pk=body["id"]).revoked_at is not None


def test_a_key_is_stored_as_a_hash_only(api_key_mode):
    key, secret = api_key_create(name="k")
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    assert secret not in str(row) and len(row["key_hash"]) == 64


def test_an_expiry_in_the_past_is_a_400(api_key_mode):
    _, admin = api_key_create(name="root", scope="admin")
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = client_with(admin).post("/v1/api-keys", {"name": "old", "expires_at": past}, format="json")
    assert response.status_code == 400 and "expires_at" in response.json()["error"]["details"]
    assert not ApiKey.objects.filter(name="old").exists()


def test_last_used_is_written_at_most_once_a_minute(api_key_mode, django_assert_num_queries, settings):
    settings.API_KEY_CACHE_SECONDS = 0  # every request reads the key
    key, secret = api_key_create(name="k")
    client = client_with(secret)
    client.get("/v1/capabilities")
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(2):  # the key's look-up and the MCP servers' capabilities, no write
        client.get("/v1/capabilities")
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get("/v1/capabilities")
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first - timedelta(minutes=2)


def test_a_valid_key_is_read_again_only_after_the_cache_time(api_key_mode, django_assert_num_queries, settings):
    settings.API_KEY_CACHE_SECONDS = 0.5
    key, secret = api_key_create(name="k")
    client = client_with(secret)
    assert client.get("/v1/capabilities").status_code == 200
    with django_assert_num_queries(1):  # the MCP servers' capabilities; the key is trusted for API_KEY_CACHE_SECONDS
        assert client.get("/v1/capabilities").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())  # revoked by another process
    time.sleep(0.6)
    assert client.get("/v1/capabilities").status_code == 401


def test_a_key_revoked_here_stops_at_once_and_an_expired_one_on_its_expiry(api_key_mode, settings):
    settings.API_KEY_CACHE_SECONDS = 60
    key, secret = api_key_create(name="k")
    assert client_with(secret).get("/v1/capabilities").status_code == 200
    api_key_revoke(key=key)
    assert client_with(secret).get("/v1/capabilities").status_code == 401
    soon, soon_secret = api_key_create(name="soon", expires_at=timezone.now() + timedelta(seconds=0.5))
    assert client_with(soon_secret).get("/v1/capabilities").status_code == 200
    time.sleep(0.6)
    assert client_with(soon_secret).get("/v1/capabilities").status_code == 401


def test_create_api_key_command_prints_a_working_key(api_key_mode, capsys):
    call_command("create_api_key", "ops", "--scope", "admin")
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("evr_")
    assert client_with(secret).get("/v1/api-keys").status_code == 200


def test_a_stream_token_opens_its_session_events_only(api_key_mode):
    _, secret = api_key_create(name="app")
    mine, other = make_session(), make_session()
    base = f"/v1/agents/{mine.agent_id}/sessions/{mine.pk}"
    issued = client_with(secret).post(f"{base}/stream-token", {}, format="json")
    assert issued.status_code == 201
    token = issued.json()["token"]
    anonymous = client_with(None)
    assert anonymous.get(f"{base}/events?token={token}").status_code == 200
    other_events = f"/v1/agents/{other.agent_id}/sessions/{other.pk}/events?token={token}"
    assert anonymous.get(other_events).status_code == 401
    assert anonymous.get(f"{base}?token={token}").status_code == 401  # the session itself: no
    assert anonymous.get(f"{base}/messages?token={token}").status_code == 401
    assert anonymous.post(f"{base}/messages?token={token}", text("hi"), format="json").status_code == 401
    assert anonymous.get(f"{base}/events?token={token[:-2]}xx").status_code == 401


def test_a_stream_token_expires(api_key_mode):
    _, secret = api_key_create(name="app")
    session = make_session()
    base = f"/v1/agents/{session.agent_id}/sessions/{session.pk}"
    token = client_with(secret).post(f"{base}/stream-token", {"ttl_seconds": 1}, format="json").json()["token"]
    assert client_with(None).get(f"{base}/events?token={token}").status_code == 200
    time.sleep(1.2)
    assert client_with(None).get(f"{base}/events?token={token}").status_code == 401


def test_a_stream_token_lives_at_most_an_hour(api_key_mode):
    _, secret = api_key_create(name="app")
    session = make_session()
    url = f"/v1/agents/{session.agent_id}/sessions/{session.pk}/stream-token"
    assert client_with(secret).post(url, {"ttl_seconds": 3601}, format="json").status_code == 400


def test_a_staff_login_opens_the_api_and_writes_need_csrf(api_key_mode, django_user_model):
    staff = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.get("/v1/agents").status_code == 200
    assert client.post("/v1/agents", {"name": "a", "system_prompt": "p"}, format="json").status_code == 403
    plain = django_user_model.objects.create_user("user", password="pw")
    client.force_login(plain)
    assert client.get("/v1/agents").status_code == 401


def _logged_in(user) -> APIClient:
    client = APIClient()  # the CSRF check has its test above; these are about scope
    client.force_login(user)
    return client


def _admin_writes(client: APIClient) -> tuple[int, int]:
    """(create an API key, change a provider): what only admin scope may do."""
    created = client.post("/v1/api-keys", {"name": "by cookie", "scope": "admin"}, format="json").status_code
    provider = LlmProvider.objects.first()
    changed = client.patch(f"/v1/llm-providers/{provider.pk}", {"name": "renamed"}, format="json").status_code
    return created, changed


def test_a_staff_login_without_the_permission_is_agents_scope(api_key_mode, django_user_model):
    staff = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    client = _logged_in(staff)
    assert _admin_writes(client) == (403, 403)
    refused = client.post("/v1/api-keys", {"name": "again"}, format="json").json()["error"]
    assert refused["code"] == "forbidden" and "everruns.api_admin" in refused["message"]
    assert not ApiKey.objects.exists() and not LlmProvider.objects.filter(name="renamed").exists()
    assert client.get("/v1/llm-providers").status_code == 200  # reading stays open to it, as to an agents key
    assert client.post("/v1/agents", {"name": "a", "system_prompt": "p"}, format="json").status_code == 201


def test_a_superuser_or_a_staff_user_with_the_permission_is_admin_scope(api_key_mode, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw")
    assert _admin_writes(_logged_in(root)) == (201, 200)
    trusted = django_user_model.objects.create_user("trusted", password="pw", is_staff=True)
    trusted.user_permissions.add(Permission.objects.get(codename="api_admin", content_type__app_label="everruns"))
    assert _admin_writes(_logged_in(trusted)) == (201, 200)


def _token(secret: str, session) -> str:
    url = f"/v1/agents/{session.agent_id}/sessions/{session.pk}/stream-token"
    return client_with(secret).post(url, {}, format="json").json()["token"]


def test_a_stream_token_dies_with_the_key_that_minted_it(api_key_mode, settings):
    settings.API_KEY_CACHE_SECONDS = 60  # the token is checked against the key's row, not the key cache
    key, secret = api_key_create(name="app")
    session = make_session()
    events = f"/v1/agents/{session.agent_id}/sessions/{session.pk}/events"
    token = _token(secret, session)
    assert client_with(None).get(f"{events}?token={token}").status_code == 200
    api_key_revoke(key=key)
    refused = client_with(None).get(f"{events}?token={token}")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"


def test_a_stream_token_dies_when_its_key_expires(api_key_mode):
    key, secret = api_key_create(name="soon", expires_at=timezone.now() + timedelta(minutes=5))
    session = make_session()
    events = f"/v1/agents/{session.agent_id}/sessions/{session.pk}/events"
    token = _token(secret, session)
    assert client_with(None).get(f"{events}?token={token}").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client_with(None).get(f"{events}?token={token}").status_code == 401


def test_a_stream_token_made_without_a_key_opens_nothing_once_keys_are_required(settings, seeded):
    session = make_session()
    url = f"/v1/agents/{session.agent_id}/sessions/{session.pk}"
    token = APIClient().post(f"{url}/stream-token", {}, format="json").json()["token"]  # AUTH_MODE=none
    settings.AUTH_MODE = "api_key"
    assert client_with(None).get(f"{url}/events?token={token}").status_code == 401


def test_a_staff_users_stream_token_dies_with_the_staff_status(api_key_mode, django_user_model):
    staff = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    session = make_session()
    url = f"/v1/agents/{session.agent_id}/sessions/{session.pk}"
    token = _logged_in(staff).post(f"{url}/stream-token", {}, format="json").json()["token"]
    assert client_with(None).get(f"{url}/events?token={token}").status_code == 200
    django_user_model.objects.filter(pk=staff.pk).update(is_staff=False)
    assert client_with(None).get(f"{url}/events?token={token}").status_code == 401


@pytest.mark.parametrize("path", ["/api-doc/openapi.json", "/swagger-ui/"])
def test_the_api_document_is_public_unless_openapi_public_is_off(api_key_mode, settings, django_user_model, path):
    assert client_with(None).get(path).status_code == 200  # OPENAPI_PUBLIC defaults to true
    settings.OPENAPI_PUBLIC = False
    refused = client_with(None).get(path)
    assert refused.status_code == 401
    if path.endswith(".json"):  # (Swagger UI's page is HTML, its refusal too)
        assert refused.json()["error"]["code"] == "unauthenticated"
    _, secret = api_key_create(name="reader")
    assert client_with(secret).get(path).status_code == 200
    assert client_with("evr_notakeyatall0000").get(path).status_code == 401
    staff = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    assert _logged_in(staff).get(path).status_code == 200


def test_writes_are_rate_limited_per_key(api_key_mode, settings):
    settings.WRITE_RATE_LIMIT = 3
    _, secret = api_key_create(name="busy")
    _, other = api_key_create(name="calm")
    client = client_with(secret)
    codes = [
        client.post("/v1/agents", {"name": "a", "system_prompt": "p"}, format="json").status_code for _ in range(4)
    ]
    assert codes[:3] == [201, 201, 201] and codes[3] in (201, 429)
    if codes[3] == 201:  # the minute turned over between the writes: one more
        codes.append(client.post("/v1/agents", {"name": "a", "system_prompt": "p"}, format="json").status_code)
    limited = client.post("/v1/agents", {"name": "a", "system_prompt": "p"}, format="json")
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 61
    assert client.get("/v1/agents").status_code == 200  # reads are not limited
    assert client_with(other).post("/v1/agents", {"name": "b", "system_prompt": "p"}, format="json").status_code == 201


def test_turns_at_once_are_capped_per_key(api_key_mode, settings):
    settings.MAX_TURNS_PER_KEY = 1
    _, secret = api_key_create(name="k")
    client = client_with(secret)
    first, second = make_session(), make_session()
    url = "/v1/agents/{}/sessions/{}/messages"
    assert client.post(url.format(first.agent_id, first.pk), text("hi"), format="json").status_code == 201
    refused = client.post(url.format(second.agent_id, second.pk), text("hi"), format="json")
    assert refused.status_code == 429 and refused["Retry-After"]
    assert not second.messages.exists()  # refused whole: nothing stored
    # A message to the session whose turn runs joins that turn: no second turn, no refusal.
    assert client.post(url.format(first.agent_id, first.pk), text("more"), format="json").status_code == 201


def test_health_stays_open(api_key_mode):
    assert client_with(None).get("/health").status_code == 200


def test_pages_and_the_admin_send_security_headers(api):
    response = api.get("/admin/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    ("env", "reason"),
    [({"SECRET_KEY": "everruns-insecure-dev-key-change-me"}, "SECRET_KEY"), ({"DEBUG": "true"}, "DEBUG")],
)
def test_the_production_shape_refuses_to_start_insecurely(env, reason):
    environ = {"PATH": "/usr/bin:/bin", "AUTH_MODE": "api_key", "SECRET_KEY": "x" * 50, **env}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='everruns.settings'; django.setup()",
        ],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and reason in result.stderr


def test_the_production_shape_defaults_to_api_keys():
    environ = {"PATH": "/usr/bin:/bin", "REDIS_URL": "redis://127.0.0.1:6379/15", "SECRET_KEY": "x" * 50}
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='everruns.settings'; django.setup(); "
    code += "from django.conf import settings; print(settings.AUTH_MODE, settings.ALLOWED_HOSTS)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split()[0] == "api_key", out.stderr
    embedded = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert embedded.stdout.startswith("none ['localhost', '127.0.0.1', '[::1]']"), embedded.stderr


def test_the_document_says_what_access_needs_in_api_key_mode_only(settings):
    settings.AUTH_MODE = "api_key"
    secured = SchemaGenerator().get_schema(request=None, public=True)
    assert secured["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert secured["paths"]["/v1/agents"]["post"]["security"] == [{"ApiKey": []}]
    assert {"401", "403", "429"} <= set(secured["paths"]["/v1/agents"]["post"]["responses"])
    assert secured["paths"]["/health"]["get"]["security"] == []
    settings.AUTH_MODE = "none"
    open_ = SchemaGenerator().get_schema(request=None, public=True)
    assert "securitySchemes" not in open_.get("components", {})
    assert "401" not in open_["paths"]["/v1/agents"]["post"]["responses"]


@contextlib.contextmanager
def database_away():
    """The default connection pointed at a closed port: every query fails as when PostgreSQL restarts."""
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "9"  # discard: nothing listens
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved


def test_the_database_away_is_a_503_with_retry_after_not_a_500(seeded_tx, settings):
    settings.AUTH_MODE = "api_key"  # committed rows (seeded_tx): the outage closes the connection
    settings.API_KEY_CACHE_SECONDS = 0  # the key's look-up meets the outage first (the middleware)
    _, secret = api_key_create(name="k")
    session = make_session()
    url = f"/v1/agents/{session.agent_id}/sessions/{session.pk}"
    with database_away():
        response = client_with(secret).get(url)
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "unavailable"
    settings.API_KEY_CACHE_SECONDS = 60  # the key is trusted: the view's read meets it (DRF's handler)
    assert client_with(secret).get(url).status_code == 200
    with database_away():
        response = client_with(secret).get(url)
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
    assert client_with(secret).get(url).status_code == 200
