"""`/v1/mcp-servers`: the resource, its tool listing against real MCP servers (tests/mcp_server.py), its headers
(encrypted, never shown, dropped with a new URL), the address guard, and `mcp:<server>` capabilities."""

import http.server
import threading

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from agents.mcp.models import McpServer
from everruns.api.keys import api_key_create
from tests import processes

URL = "/v1/mcp-servers"


@pytest.fixture(scope="module")
def mcp_http(tmp_path_factory):
    server = processes.McpTestServer(tmp_path_factory.mktemp("mcp-http"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def mcp_sse(tmp_path_factory):
    server = processes.McpTestServer(tmp_path_factory.mktemp("mcp-sse"), transport="sse")
    yield server
    server.kill()


def create(api, **body):
    return api.post(URL, {"name": "tools", **body}, format="json")


def test_a_server_is_created_with_the_tools_it_lists(api, mcp_http):
    response = create(api, url=mcp_http.url, headers={"X-Token": "s3cret-value"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["transport"] == "streamable_http" and body["default_policy"] == "ask" and body["status"] == "active"
    assert body["timeout_seconds"] == 30 and body["last_error"] is None and body["tools_refreshed_at"]
    assert body["headers_set"] == ["X-Token"] and "s3cret-value" not in response.content.decode()
    tools = {t["name"]: t for t in body["tools"]}
    assert {"echo", "explode", "slow", "slow_idempotent"} <= set(tools)
    assert tools["echo"]["parameters"]["properties"]["text"]["type"] == "string"
    assert tools["slow_idempotent"]["idempotent"] is True and tools["slow"]["idempotent"] is False
    assert api.get(f"{URL}/{body['id']}").json()["tools"] == body["tools"]
    listed = api.get(URL).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]


def test_a_server_on_the_sse_transport_lists_its_tools(api, mcp_sse):
    response = create(api, url=mcp_sse.url, transport="sse")
    assert response.status_code == 201, response.content
    assert "echo" in {t["name"] for t in response.json()["tools"]} and response.json()["last_error"] is None


def test_an_unreachable_server_is_created_with_its_error_and_refreshed_later(api, tmp_path):
    port = processes.free_port()
    response = create(api, url=f"http://127.0.0.1:{port}/mcp", timeout_seconds=3)
    assert response.status_code == 201, response.content
    assert response.json()["tools"] == [] and response.json()["last_error"]
    assert response.json()["tools_refreshed_at"] is None
    started = processes.McpTestServer(tmp_path, port=port)  # the same address, now served
    try:
        refreshed = api.post(f"{URL}/{response.json()['id']}/refresh")
        assert refreshed.status_code == 200
        assert refreshed.json()["last_error"] is None and "echo" in {t["name"] for t in refreshed.json()["tools"]}
    finally:
        started.kill()


def test_a_refresh_of_a_server_gone_keeps_its_tools_and_says_why(api, tmp_path):
    server = processes.McpTestServer(tmp_path)
    created = create(api, url=server.url, timeout_seconds=3).json()
    server.kill()
    refreshed = api.post(f"{URL}/{created['id']}/refresh").json()
    assert refreshed["tools"] == created["tools"] and refreshed["last_error"]


@pytest.mark.parametrize(
    "url",
    ["http://localhost:9/mcp", "http://10.0.0.7/mcp", "http://169.254.169.254/latest", "http://[::1]:9/mcp"],
)
def test_a_non_public_url_is_refused(api, url):
    response = create(api, url=url)
    assert response.status_code == 400, response.content
    assert "MCP_ALLOWED_HOSTS" in str(response.json()["error"]["details"]["url"])
    assert not McpServer.objects.exists()


def test_a_non_public_url_is_refused_on_change_too(api, mcp_http):
    created = create(api, url=mcp_http.url).json()
    response = api.patch(f"{URL}/{created['id']}", {"url": "http://192.168.1.1/mcp"}, format="json")
    assert response.status_code == 400
    assert McpServer.objects.get().url == mcp_http.url


def test_names_are_checked_and_unique(api, mcp_http):
    assert create(api, url=mcp_http.url, name="Bad Name").status_code == 400
    assert create(api, url=mcp_http.url, name="x" * 65).status_code == 400
    assert create(api, url=mcp_http.url).status_code == 201
    duplicate = create(api, url=mcp_http.url)
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    "body",
    [
        {"timeout_seconds": 301},
        {"timeout_seconds": 0},
        {"transport": "stdio"},
        {"default_policy": "never"},
        {"headers": {"Bad Header": "x"}},
        {"headers": {"X-A": "line\nbreak"}},
        {"headers": {"Host": "elsewhere"}},
        {"headers": ["X-A"]},
    ],
)
def test_bad_fields_are_a_400_and_store_nothing(api, mcp_http, body):
    response = create(api, url=mcp_http.url, **body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    assert not McpServer.objects.exists()


def test_headers_are_encrypted_at_rest_and_rotated_with_the_provider_keys(api, mcp_http, settings):
    create(api, url=mcp_http.url, headers={"Authorization": "Bearer tok-123456"})
    stored = McpServer.objects.get()
    assert "tok-123456" not in stored.headers_encrypted and stored.header_names == ["Authorization"]
    old_key = settings.SECRETS_ENCRYPTION_KEY
    settings.SECRETS_ENCRYPTION_KEY = Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEY_PREVIOUS = [old_key]
    call_command("rotate_secrets")
    settings.SECRETS_ENCRYPTION_KEY_PREVIOUS = []
    rotated = McpServer.objects.get()
    assert rotated.headers_encrypted != stored.headers_encrypted
    assert Fernet(settings.SECRETS_ENCRYPTION_KEY.encode()).decrypt(rotated.headers_encrypted.encode()) == (
        b'{"Authorization": "Bearer tok-123456"}'
    )


def test_a_new_url_drops_the_stored_headers_unless_new_ones_come(api, mcp_http, mcp_sse):
    created = create(api, url=mcp_http.url, headers={"X-Token": "first-secret"}).json()
    item = f"{URL}/{created['id']}"
    same_url = api.patch(item, {"default_policy": "auto"}, format="json").json()
    assert same_url["headers_set"] == ["X-Token"] and same_url["default_policy"] == "auto"
    moved = api.patch(item, {"url": mcp_sse.url, "transport": "sse"}, format="json").json()
    assert moved["headers_set"] == [] and McpServer.objects.get().headers_encrypted == ""
    assert moved["last_error"] is None and moved["tools"]  # listed again at its new address
    back = api.patch(
        item, {"url": mcp_http.url, "transport": "streamable_http", "headers": {"X-B": "b-secret"}}, format="json"
    )
    assert back.json()["headers_set"] == ["X-B"]


def test_delete(api, mcp_http):
    created = create(api, url=mcp_http.url).json()
    assert api.delete(f"{URL}/{created['id']}").status_code == 204
    assert api.get(f"{URL}/{created['id']}").status_code == 404
    assert api.delete(f"{URL}/{created['id']}").status_code == 404


def test_a_server_is_a_capability_with_its_tools_as_the_model_sees_them(api, mcp_http):
    create(api, url=mcp_http.url)
    listed = {c["id"]: c for c in api.get("/v1/capabilities").json()["items"]}
    assert "mcp:tools" in listed and "noop" in listed
    one = api.get("/v1/capabilities/mcp:tools").json()
    assert one["category"] == "mcp" and "mcp__tools__echo" in {t["name"] for t in one["tools"]}
    assert api.get("/v1/capabilities/mcp:nothing").status_code == 404


def test_agents_may_name_known_servers_only(api, mcp_http):
    create(api, url=mcp_http.url)
    agent = {"name": "a", "system_prompt": "p"}
    ok = api.post("/v1/agents", {**agent, "capabilities": ["mcp:tools"]}, format="json")
    assert ok.status_code == 201 and ok.json()["capabilities"] == ["mcp:tools"]
    unknown = api.post("/v1/agents", {**agent, "capabilities": ["mcp:missing"]}, format="json")
    assert unknown.status_code == 400 and "mcp:missing" in str(unknown.json()["error"]["details"])


def test_managing_servers_needs_the_admin_scope_and_reading_them_does_not(api, settings, mcp_http):
    settings.AUTH_MODE = "api_key"
    _, agents_key = api_key_create(name="agents", scope="agents")
    _, admin_key = api_key_create(name="admin", scope="admin")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {agents_key}")
    assert create(api, url=mcp_http.url).status_code == 403
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    created = create(api, url=mcp_http.url).json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {agents_key}")
    assert api.get(URL).status_code == 200  # as providers: an agents key reads them (never a header value)
    for method, path in (("post", f"{URL}/{created['id']}/refresh"), ("patch", f"{URL}/{created['id']}")):
        assert getattr(api, method)(path, {}, format="json").status_code == 403
    assert api.delete(f"{URL}/{created['id']}").status_code == 403


def test_the_debug_pages_show_a_server_and_its_tools_never_its_header_values(client, api, settings, mcp_http):
    settings.AUTH_MODE = "none"
    create(api, url=mcp_http.url, headers={"X-Token": "never-shown-9876"})
    providers = client.get("/debug/providers/").content.decode()
    assert 'id="mcp-tools"' in providers and "X-Token" in providers and "slow_idempotent (idempotent)" in providers
    assert "never-shown-9876" not in providers and McpServer.objects.get().headers_encrypted not in providers
    capabilities = client.get("/debug/capabilities/").content.decode()
    assert "mcp:tools" in capabilities and "mcp__tools__echo" in capabilities


def test_the_admin_saves_headers_encrypted_and_drops_them_with_a_new_url(admin_client, mcp_http, mcp_sse):
    form = {"name": "adm", "url": mcp_http.url, "transport": "streamable_http", "timeout_seconds": "30"}
    form |= {"default_policy": "ask", "status": "active", "headers": '{"X-Admin": "admin-secret-1"}'}
    assert admin_client.post("/admin/agents/mcpserver/add/", form).status_code == 302
    server = McpServer.objects.get()
    assert server.header_names == ["X-Admin"] and "admin-secret-1" not in server.headers_encrypted
    assert "echo" in {t["name"] for t in server.tools}  # listed on save
    page = admin_client.get(f"/admin/agents/mcpserver/{server.pk}/change/").content.decode()
    assert "admin-secret-1" not in page and server.headers_encrypted not in page
    moved = {**form, "url": mcp_sse.url, "transport": "sse", "headers": ""}
    assert admin_client.post(f"/admin/agents/mcpserver/{server.pk}/change/", moved).status_code == 302
    server.refresh_from_db()
    assert server.headers_encrypted == "" and server.header_names == [] and server.url == mcp_sse.url


def test_a_redirect_is_not_followed(api, mcp_http):
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(307)
            self.send_header("Location", mcp_http.url)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    redirector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=redirector.serve_forever, daemon=True)
    thread.start()
    try:
        response = create(api, url=f"http://127.0.0.1:{redirector.server_port}/mcp", timeout_seconds=5)
    finally:
        redirector.shutdown()
        redirector.server_close()
        thread.join(5)
    assert response.status_code == 201
    assert response.json()["tools"] == [] and "307" in response.json()["last_error"]


def test_the_guard_refuses_a_non_public_address_at_connect_too(api, mcp_http):
    """A URL saved while its host was public (or before MCP_ALLOWED_HOSTS changed) is checked again at connect."""
    server = McpServer.objects.create(name="rebound", url=mcp_http.url.replace("127.0.0.1", "localhost"))
    refreshed = api.post(f"{URL}/{server.pk}/refresh").json()
    assert refreshed["tools"] == [] and "not a public address" in refreshed["last_error"]
