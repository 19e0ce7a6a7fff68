"""`/v1/agents/{id}/schedules`: cron in a time zone, runs through the message service, each due time once however
many schedulers race, a missed time once after an outage, daylight-saving changes, overlap."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone
from rest_framework.test import APIClient

from agents.schedules.cron import next_after
from agents.schedules.models import Schedule, ScheduleRun
from agents.schedules.services import schedules_fire_due
from everruns.api.keys import api_key_create
from sessions import turns
from sessions.models import Message, Session, Turn
from tests.conftest import wait_for
from tests.factories import make_agent, make_session, text

HELLO = {"content": [{"type": "text", "text": "Good morning"}]}


def create(api, agent, **body):
    return api.post(f"/v1/agents/{agent.pk}/schedules", {"cron": "0 9 * * *", "message": HELLO, **body}, format="json")


def make_due(schedule_id, at: datetime) -> None:
    Schedule.objects.filter(pk=schedule_id).update(next_run_at=at)


def test_create_computes_the_next_time_in_the_zone(api):
    agent = make_agent()
    response = create(api, agent, timezone="Asia/Kolkata")
    assert response.status_code == 201
    body = response.json()
    assert body["timezone"] == "Asia/Kolkata" and body["overlap"] == "skip" and body["enabled"] is True
    assert body["session_id"] is None and body["message"] == HELLO and body["last_run_at"] is None
    next_run = datetime.fromisoformat(body["next_run_at"])
    assert next_run == next_after("0 9 * * *", "Asia/Kolkata", timezone.now())
    assert (next_run.hour, next_run.minute) == (3, 30)  # 09:00 IST is 03:30 UTC
    assert api.get(f"/v1/agents/{agent.pk}/schedules").json()["total"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "0 9 * *"}, "cron"),
        ({"cron": "99 9 * * *"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"overlap": "parallel"}, "overlap"),
        ({"message": {"content": []}}, "message"),
        ({"session_id": "0190b4f0-0000-7000-8000-000000000000"}, "session_id"),
    ],
)
def test_bad_input_is_a_400_and_stores_nothing(api, body, field):
    response = create(api, make_agent(), **body)
    assert response.status_code == 400 and field in response.json()["error"]["details"], response.json()
    assert not Schedule.objects.exists()


def test_a_session_of_another_agent_is_refused(api):
    other_session = make_session(make_agent())
    response = create(api, make_agent(), session_id=str(other_session.pk))
    assert response.status_code == 400 and "session_id" in response.json()["error"]["details"]


def test_an_unknown_agent_or_schedule_is_a_404(api):
    agent = make_agent()
    schedule = create(api, agent).json()
    assert api.get(f"/v1/agents/{make_agent().pk}/schedules/{schedule['id']}").status_code == 404
    assert api.get(f"/v1/agents/{agent.pk}/schedules/{agent.pk}").status_code == 404


def test_patch_recomputes_the_next_time_and_delete_removes(api):
    agent = make_agent()
    schedule = create(api, agent).json()
    path = f"/v1/agents/{agent.pk}/schedules/{schedule['id']}"
    patched = api.patch(path, {"cron": "*/5 * * * *"}, format="json").json()
    assert datetime.fromisoformat(patched["next_run_at"]) == next_after("*/5 * * * *", "UTC", timezone.now())
    assert api.patch(path, {"enabled": False}, format="json").json()["next_run_at"] is None
    assert api.patch(path, {"timezone": "Nowhere/Land"}, format="json").status_code == 400
    assert Schedule.objects.get(pk=schedule["id"]).timezone == "UTC"
    assert api.delete(path).status_code == 204 and api.get(path).status_code == 404


def test_a_manual_run_posts_through_the_message_service_with_the_schedule_id(api):
    agent = make_agent()
    schedule = create(api, agent, enabled=False).json()
    response = api.post(f"/v1/agents/{agent.pk}/schedules/{schedule['id']}/run")
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "started" and run["manual"] is True
    message = Message.objects.get(pk=run["message_id"])
    assert message.metadata == {"schedule_id": schedule["id"]} and message.content == HELLO["content"]
    session = Session.objects.get(pk=run["session_id"])
    assert session.agent_id == agent.pk and "0 9 * * *" in session.title and session.status == "running"
    assert Turn.objects.filter(session=session, status="queued").count() == 1
    runs = api.get(f"/v1/agents/{agent.pk}/schedules/{schedule['id']}/runs").json()
    assert runs["total"] == 1 and runs["items"][0]["id"] == run["id"]


def test_a_due_time_fires_once_and_moves_on(api):
    agent = make_agent()
    schedule = create(api, agent, cron="* * * * *").json()
    due = timezone.now().replace(second=0, microsecond=0)
    make_due(schedule["id"], due)
    [run] = schedules_fire_due()
    assert run.scheduled_for == due and run.status == "started" and not run.manual
    assert schedules_fire_due() == []
    stored = Schedule.objects.get(pk=schedule["id"])
    assert stored.next_run_at == due + timedelta(minutes=1) and stored.last_run_at is not None


def test_after_an_outage_the_missed_times_fire_once(api):
    agent = make_agent()
    schedule = create(api, agent, cron="* * * * *").json()
    now = timezone.now()
    make_due(schedule["id"], now.replace(second=0, microsecond=0) - timedelta(minutes=30))  # down for 30 minutes
    runs = schedules_fire_due(now=now)
    assert len(runs) == 1 and runs[0].status == "started"
    assert Schedule.objects.get(pk=schedule["id"]).next_run_at == next_after("* * * * *", "UTC", now)
    assert schedules_fire_due(now=now) == []
    assert Message.objects.filter(metadata__schedule_id=schedule["id"]).count() == 1


def test_a_fixed_session_overlap_skip_while_the_previous_turn_runs(api):
    agent = make_agent()
    session = make_session(agent)
    schedule = create(api, agent, cron="* * * * *", session_id=str(session.pk)).json()
    now = timezone.now()
    make_due(schedule["id"], now - timedelta(seconds=1))
    [first] = schedules_fire_due(now=now)
    assert first.status == "started" and first.session_id == session.pk
    make_due(schedule["id"], now)  # the next minute came; the first run's turn is still queued (no worker here)
    [second] = schedules_fire_due(now=now)
    assert second.status == "skipped" and second.error["code"] == "overlap" and second.message_id is None
    assert Message.objects.filter(session=session).count() == 1
    Turn.objects.filter(session=session).update(status="completed")
    Session.objects.filter(pk=session.pk).update(active_turn=None, status="pending")
    make_due(schedule["id"], now + timedelta(minutes=1))
    [third] = schedules_fire_due(now=now + timedelta(minutes=1))
    assert third.status == "started" and Message.objects.filter(session=session).count() == 2


def test_a_new_session_per_run_skips_while_the_last_runs_turn_is_open_and_queue_posts_anyway(api):
    agent = make_agent()
    schedule = create(api, agent, cron="* * * * *").json()
    now = timezone.now()
    for at in (now - timedelta(seconds=1), now):
        make_due(schedule["id"], at)
        schedules_fire_due(now=now)
    statuses = list(ScheduleRun.objects.order_by("id").values_list("status", flat=True))
    assert statuses == ["started", "skipped"] and Session.objects.filter(agent=agent).count() == 1
    api.patch(f"/v1/agents/{agent.pk}/schedules/{schedule['id']}", {"overlap": "queue"}, format="json")
    make_due(schedule["id"], now + timedelta(seconds=1))
    [run] = schedules_fire_due(now=now + timedelta(seconds=1))
    assert run.status == "started" and Session.objects.filter(agent=agent).count() == 2


def test_an_archived_agent_takes_no_new_schedule(api):
    agent = make_agent()
    api.delete(f"/v1/agents/{agent.pk}")
    response = create(api, agent)
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert not Schedule.objects.exists()


def test_an_archived_agent_fails_the_run_and_the_time_passes(api):
    agent = make_agent()
    schedule = create(api, agent, cron="* * * * *").json()
    api.delete(f"/v1/agents/{agent.pk}")
    make_due(schedule["id"], timezone.now() - timedelta(seconds=1))
    [run] = schedules_fire_due()
    assert run.status == "failed" and run.error["code"] == "conflict"
    assert not Session.objects.filter(agent=agent).exists()  # the session made for the run is rolled back too


@pytest.fixture
def keys(settings, seeded):
    """AUTH_MODE=api_key with one running turn allowed per key (MAX_TURNS_PER_KEY=1); the write limit off."""
    settings.AUTH_MODE = "api_key"
    settings.WRITE_RATE_LIMIT = 0
    settings.MAX_TURNS_PER_KEY = 1


def key_client() -> tuple[str, APIClient]:
    """A new API key's id and a client that sends it."""
    key, secret = api_key_create(name="k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return str(key.pk), client


def test_a_manual_run_by_a_key_at_its_cap_is_the_429_of_a_message_and_stores_nothing(keys):
    agent = make_agent()
    key_id, client = key_client()
    busy, idle = make_session(agent), make_session(agent)
    assert (
        client.post(f"/v1/agents/{agent.pk}/sessions/{busy.pk}/messages", text("hi"), format="json").status_code == 201
    )
    schedule = create(client, agent).json()
    refused_message = client.post(f"/v1/agents/{agent.pk}/sessions/{idle.pk}/messages", text("hi"), format="json")
    refused = client.post(f"/v1/agents/{agent.pk}/schedules/{schedule['id']}/run")
    assert refused.status_code == 429 and refused["Retry-After"] == refused_message["Retry-After"]
    assert refused.json() == refused_message.json() and refused.json()["error"]["code"] == "rate_limited"
    assert not ScheduleRun.objects.exists() and Session.objects.filter(agent=agent).count() == 2
    assert not Message.objects.filter(metadata__schedule_id=schedule["id"]).exists()
    assert Schedule.objects.get(pk=schedule["id"]).last_run_at is None
    assert turns.turn_count_of_key(key_id) == 1


def test_a_manual_run_counts_against_the_callers_key(keys):
    agent = make_agent()
    _, creator = key_client()
    caller_id, caller = key_client()
    schedule = create(creator, agent).json()
    run = caller.post(f"/v1/agents/{agent.pk}/schedules/{schedule['id']}/run").json()
    assert run["status"] == "started"
    assert Turn.objects.get(session_id=run["session_id"]).api_key_id == caller_id


def test_a_due_run_counts_against_the_key_that_created_the_schedule_and_is_refused_at_its_cap(keys):
    agent = make_agent()
    key_id, client = key_client()
    schedule = create(client, agent, cron="* * * * *", overlap="queue").json()
    now = timezone.now()
    make_due(schedule["id"], now - timedelta(seconds=1))
    [first] = schedules_fire_due(now=now)
    assert first.status == "started" and Turn.objects.get(session_id=first.session_id).api_key_id == key_id
    assert turns.turn_count_of_key(key_id) == 1
    make_due(schedule["id"], now)  # the next time comes while the first run's turn is still queued
    [second] = schedules_fire_due(now=now)
    assert second.status == "failed" and second.error["code"] == "rate_limited", second.error
    assert "1 turns running" in second.error["message"] and second.session_id is None
    assert Session.objects.filter(agent=agent).count() == 1  # the session made for the refused run is rolled back
    assert Schedule.objects.get(pk=schedule["id"]).next_run_at > now  # the time passed


def test_a_manual_run_whose_row_cannot_be_stored_is_a_409_and_changes_nothing(api, monkeypatch):
    agent = make_agent()
    schedule = create(api, agent).json()

    def refused(self, *args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(ScheduleRun, "save", refused)
    response = api.post(f"/v1/agents/{agent.pk}/schedules/{schedule['id']}/run")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert not Session.objects.filter(agent=agent).exists()
    assert Schedule.objects.get(pk=schedule["id"]).last_run_at is None


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _ticks(schedule_id: str, start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """A scheduler ticking every `step` from `start` to `end` (a fake clock); the due times it fired."""
    at = start
    while at < end:
        schedules_fire_due(now=at)
        at += step
    return list(
        ScheduleRun.objects.filter(schedule_id=schedule_id).order_by("id").values_list("scheduled_for", flat=True)
    )


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist; it fires once, at 03:00 CEST (01:00 UTC).
        (utc(2026, 3, 28), [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]),
        # 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice (00:30 and 01:30 UTC); it fires once.
        (utc(2026, 10, 24), [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_berlin_daylight_saving_changes_fire_each_day_once(api, start, expected):
    agent = make_agent()
    schedule = create(api, agent, cron="30 2 * * *", timezone="Europe/Berlin", overlap="queue").json()
    make_due(schedule["id"], next_after("30 2 * * *", "Europe/Berlin", start))
    assert _ticks(schedule["id"], start, start + timedelta(days=3), timedelta(minutes=7)) == expected


def test_kolkata_offsets(api):
    agent = make_agent()
    schedule = create(api, agent, cron="45 23 * * *", timezone="Asia/Kolkata", overlap="queue").json()
    start = utc(2026, 6, 1)
    make_due(schedule["id"], next_after("45 23 * * *", "Asia/Kolkata", start))
    fired = _ticks(schedule["id"], start, start + timedelta(days=2), timedelta(minutes=5))
    assert fired == [utc(2026, 6, 1, 18, 15), utc(2026, 6, 2, 18, 15)]  # 23:45 IST = 18:15 UTC, the same day


def _race(schedulers: int, now: datetime) -> list:
    """`schedulers` threads (each its own database connection) fire what is due at the same moment."""
    barrier = threading.Barrier(schedulers)
    made: list = []

    def scheduler():
        try:
            barrier.wait(10)
            made.extend(schedules_fire_due(now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler) for _ in range(schedulers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return made


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_racing_on_one_due_time_make_one_run(seeded_tx):
    agent = make_agent()
    schedule = Schedule.objects.create(agent=agent, cron="* * * * *", message=HELLO, overlap="queue")
    due = timezone.now().replace(microsecond=0) - timedelta(seconds=1)
    for round_ in range(1, 6):  # five rounds, each a fresh race
        make_due(schedule.pk, due)
        # At most one of the four (a worker process of the suite, if one runs, may be a fifth racer and win).
        assert len(_race(4, due + timedelta(seconds=1))) <= 1
        wait_for(lambda n=round_: ScheduleRun.objects.filter(schedule=schedule).count() == n, 10, message="one run")
        due += timedelta(minutes=1)
    time.sleep(1)  # a late second run of any round would show now
    statuses = list(ScheduleRun.objects.filter(schedule=schedule).values_list("status", flat=True))
    assert statuses == ["started"] * 5
    assert Message.objects.filter(metadata__schedule_id=str(schedule.pk)).count() == 5


def test_the_unique_due_time_holds_even_if_a_scheduler_reads_a_stale_next_time(api):
    """A scheduler that read the schedule before another one fired it (and wrote the next time) still cannot fire
    that time again: the run row is unique per schedule and due time, and it comes before the message."""
    agent = make_agent()
    schedule = create(api, agent, cron="* * * * *").json()
    due = timezone.now().replace(second=0, microsecond=0)
    make_due(schedule["id"], due)
    schedules_fire_due(now=due)
    make_due(schedule["id"], due)  # the stale view: the same time due again
    assert schedules_fire_due(now=due) == []
    assert ScheduleRun.objects.count() == 1 and Message.objects.count() == 1
