"""The debug pages, server-rendered: who may see them, what they show, and what they never show."""

import re
from html.parser import HTMLParser

import pytest

from agents import llm_services
from agents.models import Agent, LlmProvider
from sessions.log import append_event, append_message
from sessions.models import Session
from sessions.webhooks.models import WebhookDelivery
from sessions.webhooks.services import webhook_create
from tests.factories import make_agent, make_model, make_session

PAGES = ["/debug/", "/debug/capabilities/", "/debug/providers/"]


@pytest.fixture
def open_mode(settings, seeded):
    settings.AUTH_MODE = "none"


@pytest.fixture
def api_key_mode(settings, seeded):
    settings.AUTH_MODE = "api_key"


def session_pages(session) -> list[str]:
    base = f"/debug/agents/{session.agent_id}"
    return [
        f"{base}/",
        f"{base}/sessions/{session.pk}/",
        f"{base}/sessions/{session.pk}/context/",
        f"{base}/sessions/{session.pk}/webhooks/",
    ]


class Forms(HTMLParser):
    """Each form's method and the names of its inputs."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"id": attrs.get("id"), "method": (attrs.get("method") or "get").lower(), "inputs": []})
        elif tag in ("input", "textarea", "select") and self.forms:
            self.forms[-1]["inputs"].append(attrs.get("name"))


def test_open_with_auth_mode_none(client, open_mode):
    session = make_session()
    for url in [*PAGES, *session_pages(session)]:
        assert client.get(url).status_code == 200, url


def test_staff_login_required_with_api_keys(client, api_key_mode, django_user_model):
    session = make_session()
    urls = [*PAGES, *session_pages(session)]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/?next=")
    client.force_login(django_user_model.objects.create_user("viewer", password="pw"))  # not staff
    assert client.get("/debug/").status_code == 302
    client.force_login(django_user_model.objects.create_user("ops", password="pw", is_staff=True))
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_pages_allow_only_their_own_origin_and_are_never_cached(client, open_mode):
    response = client.get("/debug/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "no-store" in response["Cache-Control"]
    assert response["X-Frame-Options"] == "DENY"


def test_no_inline_script_or_style_and_every_post_form_has_a_csrf_token(client, open_mode):
    session = make_session()
    for url in [*PAGES, *session_pages(session)]:
        html = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert "<style" not in html and " style=" not in html, url
        parser = Forms()
        parser.feed(html)
        for form in parser.forms:
            if form["method"] == "post":
                assert "csrfmiddlewaretoken" in form["inputs"], (url, form["id"])


def test_agents_page_lists_status_capabilities_and_session_counts(client, open_mode):
    agent = make_agent(name="Counter", capabilities=["test_math", "current_time"])
    make_session(agent)
    busy = make_session(agent)
    Session.objects.filter(pk=busy.pk).update(status=Session.Status.RUNNING)
    make_agent(name="Quiet")
    row = row_of(client.get("/debug/").content.decode(), "Counter")
    assert "active" in row and "test_math" in row and "current_time" in row
    assert re.search(r">\s*2\s*<span[^>]*>1 busy</span>", row)


def test_agents_page_searches_by_name_and_filters_by_status(client, open_mode):
    make_agent(name="Findable one")
    archived = make_agent(name="Findable archived")
    Agent.objects.filter(pk=archived.pk).update(status=Agent.Status.ARCHIVED)
    make_agent(name="Other")
    page = client.get("/debug/?q=findable").content.decode()
    assert "Findable one" in page and "Other" not in page and "Findable archived" not in page
    page = client.get("/debug/?q=findable&status=all").content.decode()
    assert "Findable one" in page and "Findable archived" in page
    page = client.get("/debug/?status=archived").content.decode()
    assert "Findable archived" in page and "Findable one" not in page


def test_agent_page_shows_settings_sessions_and_its_buttons(client, open_mode):
    model = make_model(model_id="shown-model")
    agent = make_agent(
        name="Detailed", capabilities=["test_math"], default_model_id=model.pk, system_prompt="Be <b>kind</b>."
    )
    Agent.objects.filter(pk=agent.pk).update(tool_policy={"add": "ask"}, limits={"max_tokens_per_turn": 500})
    session = make_session(agent, title="First chat")
    page = client.get(f"/debug/agents/{agent.pk}/").content.decode()
    assert "shown-model" in page and "add: ask" in page and "max_tokens_per_turn: 500" in page
    assert "Be &lt;b&gt;kind&lt;/b&gt;." in page  # escaped, never markup
    assert f'href="/debug/agents/{agent.pk}/sessions/{session.pk}/">First chat' in page
    assert f'action="/v1/agents/{agent.pk}/sessions"' in page  # start a session
    assert f'href="/v1/agents/{agent.pk}/export"' in page


def test_session_page_carries_its_api_paths_and_state(client, open_mode):
    session = make_session(title="Live one")
    Session.objects.filter(pk=session.pk).update(
        status=Session.Status.RUNNING, input_tokens=120, output_tokens=30, cost_usd=0.0042
    )
    page = client.get(session_pages(session)[1]).content.decode()
    assert f'data-api="/v1/agents/{session.agent_id}/sessions/{session.pk}"' in page
    assert 'id="status" class="badge status-running">running<' in page
    assert ">120</b> in" in page and ">30</b> out" in page and "$0.004200" in page
    assert '<form id="cancel-form"' in page and 'id="cancel-form" method="post" action=' in page
    assert "hidden" not in re.search(r'<form id="cancel-form"[^>]*>', page).group(0)  # a turn runs: cancel shows


def test_unknown_or_misplaced_sessions_are_404(client, open_mode):
    session = make_session()
    other = make_agent()
    assert client.get(f"/debug/agents/{other.pk}/sessions/{session.pk}/").status_code == 404
    assert client.get("/debug/agents/01890000-0000-7000-8000-000000000000/").status_code == 404
    assert client.get("/debug/agents/not-a-uuid/").status_code == 404


def test_capabilities_page_shows_each_tool_schema_as_json(client, open_mode):
    page = client.get("/debug/capabilities/").content.decode()
    assert 'id="test_math"' in page and "get_current_time" in page
    assert "&quot;properties&quot;: {" in page  # JSON, not a Python repr


def test_providers_page_never_shows_a_key(client, open_mode, settings):
    provider = LlmProvider(name="Keyed", provider_type="openai")
    llm_services.provider_save(provider=provider, api_key="sk-secret-key-123456", clear_key=False)
    make_model(model_id="listed-model")
    page = client.get("/debug/providers/").content.decode()
    provider.refresh_from_db()
    assert "Keyed" in page and "listed-model" in page and "stored (encrypted)" in page
    assert "sk-secret-key-123456" not in page and provider.api_key_encrypted not in page


def test_session_page_draws_the_conversation_from_the_stream_and_shows_the_context(client, open_mode):
    session = make_session()
    append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": "from the log"}])
    append_event(session_id=session.pk, type="turn.started", data={"input_message_ids": []})
    page = client.get(session_pages(session)[1]).content.decode()
    # The conversation comes from the stream (one renderer: static/debug/session.js); the context shows it.
    assert '<div id="conversation"' in page and "session.js" in page
    assert "from the log" in page  # in the context of the next LLM call


def row_of(html: str, name: str) -> str:
    rows = re.findall(r"<tr>.*?</tr>", html, re.S)
    return next(row for row in rows if f">{name}</a>" in row)


def test_deliveries_page_shows_each_delivery_of_the_session(client, open_mode):
    session = make_session(title="Hooked")
    webhook = webhook_create(url="http://127.0.0.1:9/receiver", events=["turn.completed"])
    append_event(session_id=session.pk, type="turn.completed", data={})
    append_event(session_id=make_session().pk, type="turn.completed", data={})  # another session's
    delivery = WebhookDelivery.objects.get(session_id=session.pk)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=2, last_status_code=503, last_error="HTTP 503")
    page = client.get(f"/debug/agents/{session.agent_id}/sessions/{session.pk}/webhooks/").content.decode()
    assert page.count('<tr class="delivery-') == 1 and str(delivery.pk) in page and webhook.url in page
    assert "HTTP 503" in page and "turn.completed" in page and webhook.secret not in page
    session_page = client.get(f"/debug/agents/{session.agent_id}/sessions/{session.pk}/").content.decode()
    assert f"/sessions/{session.pk}/webhooks/" in session_page
