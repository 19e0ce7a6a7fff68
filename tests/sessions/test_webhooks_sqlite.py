"""On SQLite (`make run`), the outbox's portable path writes the same deliveries as PostgreSQL's CTE, and
schedules fire once per due time (SQLite has no row locks to skip: it serialises writers instead)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, LlmModel, LlmProvider
from agents.schedules.models import Schedule, ScheduleRun
from agents.schedules.services import schedules_fire_due
from sessions.log import append_event
from sessions.models import Event, Message, Session, Turn
from sessions.webhooks import deliveries
from sessions.webhooks.models import Webhook, WebhookDelivery
from tests.sqlite import sqlite_as_default

MODELS = (LlmProvider, LlmModel, Agent, Session, Turn, Message, Event, Webhook, WebhookDelivery, Schedule, ScheduleRun)


@pytest.fixture
def sqlite_db(django_db_blocker):
    with sqlite_as_default(django_db_blocker, MODELS):
        yield


def test_the_portable_outbox_matches_events_types_agents_and_enabled(sqlite_db):
    agent, other = Agent.objects.create(name="a", system_prompt="p"), Agent.objects.create(name="b", system_prompt="p")
    session = Session.objects.create(agent=agent)
    wanted = Webhook.objects.create(url="http://127.0.0.1:9/a", events=["turn.completed"], secret="whsec_x")
    of_agent = Webhook.objects.create(url="http://127.0.0.1:9/b", events=["turn.completed"], agent=agent, secret="s")
    Webhook.objects.create(url="http://127.0.0.1:9/c", events=["turn.completed"], agent=other, secret="s")
    Webhook.objects.create(url="http://127.0.0.1:9/d", events=["turn.completed"], enabled=False, secret="s")
    Webhook.objects.create(url="http://127.0.0.1:9/e", events=["turn.completedx"], secret="s")
    event = append_event(session_id=session.pk, type="turn.completed", data={})
    append_event(session_id=session.pk, type="turn.started", data={})
    rows = WebhookDelivery.objects.all()
    assert {r.webhook_id for r in rows} == {wanted.pk, of_agent.pk}
    assert all(r.event_id == event.id and r.agent_id == agent.pk and r.status == "pending" for r in rows)
    assert set(deliveries.due_ids()) == {str(r.id) for r in rows}  # the sweep's query runs on SQLite too


def test_a_due_schedule_fires_once(sqlite_db):
    LlmModel.objects.create(
        provider=LlmProvider.objects.create(name="sim", provider_type="llmsim"), model_id="llmsim-1", is_default=True
    )
    agent = Agent.objects.create(name="a", system_prompt="p")
    schedule = Schedule.objects.create(
        agent=agent, cron="* * * * *", message={"content": [{"type": "text", "text": "hi"}]}, overlap="queue"
    )
    now = timezone.now()
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=now - timedelta(minutes=5))
    assert [r.status for r in schedules_fire_due(now=now)] == ["started"]
    assert schedules_fire_due(now=now) == []
    assert Message.objects.get().metadata == {"schedule_id": str(schedule.pk)}
