import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model

from agents.models import Agent, LlmModel, LlmProvider
from agents.schedules.models import Schedule
from sessions import services as session_services
from sessions.log import append_event, append_message
from sessions.models import Event
from sessions.webhooks.models import Webhook
from tests.factories import make_agent, make_model, make_session


@pytest.fixture
def admin_client(client, seeded):
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def test_agent_admin_lists_searches_filters_and_edits(admin_client):
    agent = make_agent(name="Findable agent", capabilities=["test_math"])
    make_agent(name="Other")
    page = admin_client.get("/admin/agents/agent/?q=Findable").content.decode()
    assert "Findable agent" in page and "Other" not in page
    assert admin_client.get("/admin/agents/agent/?status__exact=archived").status_code == 200
    change = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert 'value="test_math"' in change and "checked" in change  # the capability checkbox widget


def test_session_admin_shows_messages_and_events_read_only(admin_client):
    session = make_session(title="Debuggable")
    append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": "hello there"}])
    append_event(session_id=session.pk, type="turn.started", data={"input_message_ids": []})
    assert "Debuggable" in admin_client.get("/admin/agent_sessions/session/?q=Debuggable").content.decode()
    assert admin_client.get("/admin/agent_sessions/session/?status__exact=pending").status_code == 200
    page = admin_client.get(f"/admin/agent_sessions/session/{session.pk}/change/").content.decode()
    assert "hello there" in page and "turn.started" in page and "message.user" in page
    assert 'name="messages-0-role"' not in page  # inline rows are not editable


def test_provider_admin_never_shows_the_encrypted_key(admin_client):
    page = admin_client.get("/admin/agents/llmprovider/add/").content.decode()
    assert "api_key_encrypted" not in page


def model_form(model: LlmModel, **changes) -> dict:
    data = {
        "provider": str(model.provider_id),
        "model_id": model.model_id,
        "display_name": model.display_name,
        "status": model.status,
        **changes,
    }
    if data.pop("is_default", model.is_default):
        data["is_default"] = "on"
    return data


def provider_form(**fields) -> dict:
    return {
        "name": "Local",
        "provider_type": "openai_compatible",
        "base_url": "http://127.0.0.1:1/v1",
        "settings": "{}",
        "status": "active",
        "models-TOTAL_FORMS": "0",
        "models-INITIAL_FORMS": "0",
        **fields,
    }


def test_ticking_a_second_default_model_in_the_admin_moves_the_default(admin_client):
    old = LlmModel.objects.get(is_default=True)
    other = make_model()
    response = admin_client.post(f"/admin/agents/llmmodel/{other.pk}/change/", model_form(other, is_default=True))
    assert response.status_code == 302
    assert list(LlmModel.objects.filter(is_default=True)) == [other]
    added = admin_client.post(
        "/admin/agents/llmmodel/add/", model_form(other, model_id="added-default", is_default=True)
    )
    assert added.status_code == 302
    assert list(LlmModel.objects.filter(is_default=True).values_list("model_id", flat=True)) == ["added-default"]
    assert LlmModel.objects.filter(pk=old.pk, is_default=False).exists()


def test_unticking_the_default_model_in_the_admin_is_a_form_error(admin_client):
    default = LlmModel.objects.get(is_default=True)
    response = admin_client.post(f"/admin/agents/llmmodel/{default.pk}/change/", model_form(default, is_default=False))
    assert response.status_code == 200
    assert "is_default" in response.context["adminform"].form.errors
    assert LlmModel.objects.get(pk=default.pk).is_default


@pytest.mark.parametrize(
    "fields,error_field",
    [({"provider_type": "nonsense"}, "provider_type"), ({"base_url": ""}, "base_url")],
)
def test_provider_admin_applies_the_api_rules_as_form_errors(admin_client, fields, error_field):
    before = LlmProvider.objects.count()
    response = admin_client.post("/admin/agents/llmprovider/add/", provider_form(**fields))
    assert response.status_code == 200
    assert error_field in response.context["adminform"].form.errors
    assert LlmProvider.objects.count() == before
    assert admin_client.post("/admin/agents/llmprovider/add/", provider_form()).status_code == 302


def test_deleting_the_default_model_in_the_admin_is_refused_with_a_message(admin_client):
    default = LlmModel.objects.get(is_default=True)
    response = admin_client.post(f"/admin/agents/llmmodel/{default.pk}/delete/", {"post": "yes"}, follow=True)
    assert "global default model" in response.content.decode()
    assert response.redirect_chain[0][0] == f"/admin/agents/llmmodel/{default.pk}/change/"
    provider = admin_client.post(
        f"/admin/agents/llmprovider/{default.provider_id}/delete/", {"post": "yes"}, follow=True
    )
    assert "global default model" in provider.content.decode()
    other = make_model()
    bulk = admin_client.post(
        "/admin/agents/llmmodel/",
        {"action": "delete_selected", "_selected_action": [default.pk, other.pk], "post": "yes"},
        follow=True,
    )
    assert "global default model" in bulk.content.decode()
    assert LlmModel.objects.filter(pk__in=[default.pk, other.pk]).count() == 2  # nothing was deleted
    assert LlmProvider.objects.filter(pk=default.provider_id).exists()
    assert LogEntry.objects.count() == 0
    deleted = admin_client.post(f"/admin/agents/llmmodel/{other.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302 and not LlmModel.objects.filter(pk=other.pk).exists()


def agent_form(agent, **changes) -> dict:
    return {
        "name": agent.name,
        "system_prompt": agent.system_prompt,
        "tags": "[]",
        "status": agent.status,
        "tool_policy": "{}",
        "limits": "{}",
        **changes,
    }


def test_agent_admin_edits_tool_policy_and_limits_as_json(admin_client):
    agent = make_agent(tool_policy={"web_fetch": "ask"}, limits={"max_tokens_per_turn": 500})
    page = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert 'name="tool_policy"' in page and "web_fetch" in page and 'name="limits"' in page
    form = agent_form(agent, tool_policy='{"*": "ask", "add": "auto"}', limits='{"max_cost_usd_per_turn": 0.5}')
    assert admin_client.post(f"/admin/agents/agent/{agent.pk}/change/", form).status_code == 302
    agent.refresh_from_db()
    assert agent.tool_policy == {"*": "ask", "add": "auto"} and agent.limits == {"max_cost_usd_per_turn": 0.5}


@pytest.mark.parametrize(
    "fields,error_field",
    [
        ({"tool_policy": '{"add": "sometimes"}'}, "tool_policy"),
        ({"tool_policy": "[]"}, "tool_policy"),
        ({"limits": '{"max_tokens_per_turn": 0}'}, "limits"),
        ({"limits": '{"max_turns": 3}'}, "limits"),
    ],
)
def test_agent_admin_applies_the_api_rules_to_tool_policy_and_limits(admin_client, fields, error_field):
    agent = make_agent(tool_policy={"web_fetch": "ask"})
    response = admin_client.post(f"/admin/agents/agent/{agent.pk}/change/", agent_form(agent, **fields))
    assert response.status_code == 200
    assert error_field in response.context["adminform"].form.errors
    agent.refresh_from_db()
    assert agent.tool_policy == {"web_fetch": "ask"} and agent.limits == {}


def session_form(session, **changes) -> dict:
    form = {"agent": str(session.agent_id), "title": session.title or "", "tags": "[]", "limits": "{}", **changes}
    for prefix in ("turns", "messages", "events"):  # the read-only inlines' management forms
        form |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return form


def test_session_admin_edits_limits_as_json_and_applies_the_api_rules(admin_client):
    session = make_session(title="Budgeted", limits={"max_tokens": 9})
    url = f"/admin/agent_sessions/session/{session.pk}/change/"
    assert 'name="limits"' in admin_client.get(url).content.decode()
    bad = admin_client.post(url, session_form(session, limits='{"max_cost_usd": -1}'))
    assert bad.status_code == 200 and "limits" in bad.context["adminform"].form.errors
    session.refresh_from_db()
    assert session.limits == {"max_tokens": 9}
    good = admin_client.post(url, session_form(session, limits='{"max_cost_usd": 2, "max_tokens": null}'))
    assert good.status_code == 302
    session.refresh_from_db()
    assert session.limits == {"max_cost_usd": 2, "max_tokens": None}


def test_agent_admin_archives_unarchives_and_duplicates(admin_client):
    agent = make_agent(name="Admin managed", capabilities=["test_math"], tags=["t"], max_iterations=3)
    Agent.objects.filter(pk=agent.pk).update(tool_policy={"add": "ask"})
    changelist = "/admin/agents/agent/"
    admin_client.post(changelist, {"action": "archive", "_selected_action": [str(agent.pk)]})
    agent.refresh_from_db()
    assert agent.status == "archived"
    admin_client.post(changelist, {"action": "unarchive", "_selected_action": [str(agent.pk)]})
    agent.refresh_from_db()
    assert agent.status == "active"
    response = admin_client.post(changelist, {"action": "duplicate", "_selected_action": [str(agent.pk)]}, follow=True)
    copy = Agent.objects.get(name="Admin managed (copy)")
    assert "Duplicated Admin managed as Admin managed (copy)" in response.content.decode()
    assert copy.pk != agent.pk and copy.system_prompt == agent.system_prompt
    assert (copy.capabilities, copy.tags, copy.max_iterations) == (["test_math"], ["t"], 3)
    assert copy.tool_policy == {"add": "ask"}


def test_admin_links_to_the_debug_pages(admin_client):
    session = make_session()
    assert 'href="/debug/"' in admin_client.get("/admin/").content.decode()
    page = admin_client.get(f"/admin/agent_sessions/session/{session.pk}/change/").content.decode()
    assert f'href="/debug/agents/{session.agent_id}/sessions/{session.pk}/"' in page


def test_session_admin_cancels_a_running_turn(admin_client):
    session = make_session(title="Runaway")
    text = [{"type": "text", "text": "keep going"}]
    session_services.message_post(session=session, content=text)  # a queued turn that no worker takes
    changelist = "/admin/agent_sessions/session/"
    response = admin_client.post(
        changelist, {"action": "cancel_turn", "_selected_action": [str(session.pk)]}, follow=True
    )
    assert "Cancelled the turn of 1 session(s)." in response.content.decode()
    session.refresh_from_db()
    assert session.status == "pending"
    assert Event.objects.filter(session=session, type="turn.cancelled").exists()
    again = admin_client.post(changelist, {"action": "cancel_turn", "_selected_action": [str(session.pk)]}, follow=True)
    assert "Cancelled the turn" not in again.content.decode()  # nothing left to cancel: a warning instead


def test_webhook_admin_creates_with_a_secret_shown_once_and_refuses_private_targets(admin_client, settings):
    form = {"url": "http://127.0.0.1:9/hook", "events": ["turn.completed"], "enabled": "on"}
    response = admin_client.post("/admin/agent_sessions/webhook/add/", form, follow=True)
    webhook = Webhook.objects.get()
    assert webhook.secret.startswith("whsec_") and webhook.secret in response.content.decode()
    assert (
        webhook.secret not in admin_client.get(f"/admin/agent_sessions/webhook/{webhook.pk}/change/").content.decode()
    )
    settings.WEBHOOK_ALLOWED_HOSTS = []
    refused = admin_client.post("/admin/agent_sessions/webhook/add/", {**form, "url": "http://10.0.0.1/x"})
    assert refused.status_code == 200 and "refused" in refused.content.decode() and Webhook.objects.count() == 1
    action = {"action": "rotate_secret", "_selected_action": [str(webhook.pk)]}
    rotated = admin_client.post("/admin/agent_sessions/webhook/", action, follow=True)
    webhook.refresh_from_db()
    assert webhook.previous_secret and webhook.secret in rotated.content.decode()
    assert admin_client.get("/admin/agent_sessions/webhookdelivery/").status_code == 200


def test_schedule_admin_checks_the_cron_and_runs_now(admin_client):
    agent = make_agent()
    form = {
        "agent": str(agent.pk),
        "cron": "0 9 * * *",
        "timezone": "Europe/Berlin",
        "message": '{"content": [{"type": "text", "text": "hi"}]}',
        "enabled": "on",
        "overlap": "skip",
        "runs-TOTAL_FORMS": "0",
        "runs-INITIAL_FORMS": "0",
    }
    bad = admin_client.post("/admin/agents/schedule/add/", {**form, "timezone": "Moon/Base"})
    assert bad.status_code == 200 and "Unknown IANA time zone" in bad.content.decode()
    created = admin_client.post("/admin/agents/schedule/add/", form)
    assert created.status_code == 302, created.content.decode()[-3000:]
    schedule = Schedule.objects.get()
    assert schedule.next_run_at is not None
    action = {"action": "run_now", "_selected_action": [str(schedule.pk)]}
    assert "started" in admin_client.post("/admin/agents/schedule/", action, follow=True).content.decode()
    assert "Started" in admin_client.get(f"/admin/agents/schedule/{schedule.pk}/change/").content.decode()  # the run
