import pytest
from django.contrib.auth import get_user_model

from sessions.log import append_event, append_message
from tests.factories import make_agent, make_session


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
