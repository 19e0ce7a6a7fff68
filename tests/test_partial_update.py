"""One partial update for every PATCH (everruns.services.instance_update)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Agent, LlmModel
from everruns.services import instance_update
from tests.factories import make_agent, make_model, make_session


def test_a_patch_that_changes_nothing_writes_nothing(api):
    agent = make_agent(name="Same")
    with CaptureQueriesContext(connection) as queries:
        response = api.patch(f"/v1/agents/{agent.pk}", {"name": "Same"}, format="json")
    assert response.status_code == 200
    assert not [q for q in queries if q["sql"].startswith("UPDATE")]
    assert Agent.objects.get(pk=agent.pk).updated_at == agent.updated_at


def test_an_update_writes_only_the_changed_fields_and_updated_at(db):
    agent = make_agent(name="Before", description="old")
    Agent.objects.filter(pk=agent.pk).update(description="changed elsewhere")
    assert instance_update(agent, fields=["name", "description"], data={"name": "After", "other": "ignored"})
    stored = Agent.objects.get(pk=agent.pk)
    assert (stored.name, stored.description) == ("After", "changed elsewhere")
    assert stored.updated_at > agent.created_at
    assert not instance_update(agent, fields=["name"], data={"name": "After"})


def test_null_clears_session_tags_and_model_and_a_model_display_name(api):
    session = make_session(title="t", tags=["a"])
    url = f"/v1/agents/{session.agent_id}/sessions/{session.pk}"
    model = make_model()
    assert api.patch(url, {"tags": None, "model_id": str(model.pk)}, format="json").json()["tags"] == []
    assert api.patch(url, {"model_id": None}, format="json").json()["model_id"] is None
    response = api.patch(f"/v1/llm-models/{model.pk}", {"display_name": None}, format="json")
    assert response.json()["display_name"] == "" and LlmModel.objects.get(pk=model.pk).display_name == ""


def test_the_provider_rules_hold_on_a_patch_too(api):
    provider = make_model().provider
    response = api.patch(f"/v1/llm-providers/{provider.pk}", {"provider_type": "openai_compatible"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"base_url": ["Required for openai_compatible."]}
    assert api.get(f"/v1/llm-providers/{provider.pk}").json()["provider_type"] == "llmsim"
