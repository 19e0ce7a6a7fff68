"""Webhooks and schedules on the production shape (uvicorn + a Celery worker on PostgreSQL and Redis), driven
through HTTP: a schedule posts into a session, a real receiver gets each turn.completed once, signed; a dead
endpoint slows neither the turn nor another endpoint; a worker killed between the event and the send loses
nothing and repeats nothing."""

import json
import time
from datetime import datetime, timedelta

import pytest
import requests
from django.conf import settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Verifier

from agents.schedules.models import Schedule
from everruns.celery import RUN_TURN_TASK
from everruns.celery import app as celery_app
from sessions.models import Session, Turn
from sessions.webhooks.models import Webhook, WebhookDelivery
from tests import processes
from tests.conftest import wait_for
from tests.e2e.client import open_session, say
from tests.factories import make_agent, make_session
from tests.runner.helpers import post_user
from tests.webhook_receiver import Receiver

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def completions(receiver: Receiver) -> list[dict]:
    """The turn.completed deliveries the receiver answered 200 to, parsed."""
    return [json.loads(r["body"]) for r in receiver.answered(200) if json.loads(r["body"])["type"] == "turn.completed"]


def test_a_minutely_schedule_posts_into_a_session_and_each_turn_completed_arrives_signed_once(stack, receiver):
    session_url = open_session(stack)
    agent_id, session_id = session_url.split("/")[-3], session_url.split("/")[-1]
    hook = requests.post(
        f"{stack}/v1/webhooks", json={"url": receiver.url, "events": ["turn.completed"], "agent_id": agent_id}
    )
    assert hook.status_code == 201, hook.text
    secret = hook.json()["secret"]
    created = requests.post(
        f"{stack}/v1/agents/{agent_id}/schedules",
        json={"cron": "* * * * *", "session_id": session_id, "message": {"content": [{"type": "text", "text": "Hi"}]}},
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    schedule_url = f"{stack}/v1/agents/{agent_id}/schedules/{schedule['id']}"
    next_run = datetime.fromisoformat(schedule["next_run_at"])
    assert next_run.second == 0 and timedelta(0) < next_run - timezone.now() <= timedelta(minutes=1)

    manual = requests.post(f"{schedule_url}/run")  # a run now
    assert manual.status_code == 202 and manual.json()["status"] == "started"
    wait_for(lambda: len(completions(receiver)) == 1, 30, message="the first turn.completed")

    # The minute comes (a fake clock: the due time is moved to now); the worker's scheduler fires it. (The real
    # minute may come during the test too: it fires as well, or is skipped while a turn of the session runs.)
    Schedule.objects.filter(pk=schedule["id"]).update(next_run_at=timezone.now())

    def started_runs():
        return [r for r in requests.get(f"{schedule_url}/runs").json()["items"] if r["status"] == "started"]

    wait_for(lambda: len(started_runs()) >= 2, 30, message="the scheduled run")
    assert requests.patch(schedule_url, json={"enabled": False}).json()["next_run_at"] is None
    started = started_runs()
    wait_for(lambda: len(completions(receiver)) == len(started), 30, message="a turn.completed per run")
    time.sleep(2)  # a second copy of any would come within the sweep interval

    answered = receiver.answered(200)
    assert len(answered) == len(started) and len({r["headers"]["webhook-id"] for r in answered}) == len(started)
    for request in answered:
        payload = Verifier(secret).verify(request["body"], request["headers"])
        assert payload["data"]["session_id"] == session_id and payload["data"]["agent_id"] == agent_id
    runs = requests.get(f"{schedule_url}/runs").json()["items"]
    assert all(r["status"] == "started" or r["error"]["code"] == "overlap" for r in runs)
    assert {r["session_id"] for r in started} == {session_id}
    user = [m for m in requests.get(f"{session_url}/messages").json()["items"] if m["role"] == "user"]
    assert len(user) == len(started) and all(m["metadata"] == {"schedule_id": schedule["id"]} for m in user)
    assert requests.get(schedule_url).json()["last_run_at"] is not None
    deliveries = requests.get(f"{stack}/v1/webhooks/{hook.json()['id']}/deliveries").json()["items"]
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in deliveries] == [("delivered", 1, 200)] * len(
        started
    )


def test_an_endpoint_that_never_answers_slows_neither_the_turn_nor_another_endpoint(stack, receiver):
    dead = Receiver().start()
    try:
        for _ in range(3):
            dead.reply({"hang": True})
        session_url = open_session(stack)
        agent_id = session_url.split("/")[-3]
        body = {"events": ["turn.completed"], "agent_id": agent_id}
        dead_hook = requests.post(f"{stack}/v1/webhooks", json={"url": dead.url, **body}).json()
        requests.post(f"{stack}/v1/webhooks", json={"url": receiver.url, **body}).raise_for_status()
        assert say(session_url, "hello").status_code == 201
        wait_for(lambda: len(completions(receiver)) == 1, 15, message="the healthy endpoint's delivery")
        assert requests.get(session_url).json()["status"] == "pending"  # the turn ended, as it would without
        # The healthy endpoint got its delivery while the dead one's first attempt was still waiting.
        assert receiver.requests[0]["at"] - dead.requests[0]["at"] < settings.WEBHOOK_TIMEOUT_SECONDS
        url = f"{stack}/v1/webhooks/{dead_hook['id']}/deliveries"
        # 1 attempt + 2 retries (WEBHOOK_RETRY_SCHEDULE of the suite), each a time-out, then failed.
        wait_for(lambda: requests.get(url).json()["items"][0]["status"] == "failed", 30, message="failed")
        [delivery] = requests.get(url).json()["items"]
        assert delivery["attempts"] == 3 and "timed out" in delivery["last_error"]
        assert len(dead.requests) == 3 and len({r["headers"]["webhook-id"] for r in dead.requests}) == 1
        assert len(completions(receiver)) == 1
    finally:
        dead.stop()


def test_a_500_is_retried_by_the_worker_with_the_same_webhook_id(stack, receiver):
    receiver.reply({"status": 500})
    session_url = open_session(stack)
    agent_id = session_url.split("/")[-3]
    hook = requests.post(
        f"{stack}/v1/webhooks", json={"url": receiver.url, "events": ["turn.completed"], "agent_id": agent_id}
    ).json()
    assert say(session_url, "hello").status_code == 201
    wait_for(lambda: len(receiver.answered(200)) == 1, 30, message="the retry answered 200")
    assert [r["answer"] for r in receiver.requests] == [500, 200]
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    waited = receiver.requests[1]["at"] - receiver.requests[0]["at"]
    assert waited >= settings.WEBHOOK_RETRY_SCHEDULE[0] - 0.05  # not before the first step of the schedule
    for request in receiver.requests:
        Verifier(hook["secret"]).verify(request["body"], request["headers"])
    [delivery] = requests.get(f"{stack}/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 2, 200)


@pytest.mark.fault
def test_a_worker_killed_after_the_event_commits_and_before_the_send_delivers_once_after_restart(
    seeded_tx, log_dir, receiver
):
    queue = f"webhook-faults-{settings.RUN_ID}"
    env = {**processes.WORKER_ENV, "CELERY_QUEUE": queue}
    agent = make_agent()
    webhook = Webhook.objects.create(
        url=receiver.url, events=["turn.completed"], agent=agent, secret="whsec_" + "A" * 32
    )
    # The webhook's in-flight slots are held (attempts claimed elsewhere and not finished): the doomed worker commits
    # the event and its delivery but cannot send it before it dies (nor can any other worker of the suite).
    held = make_session(agent)
    later = timezone.now() + timedelta(hours=1)
    for _ in range(settings.WEBHOOK_MAX_IN_FLIGHT):
        WebhookDelivery.objects.create(
            webhook=webhook, event_id=held.pk, event_type="turn.completed", session_id=held.pk, agent_id=agent.pk,
            next_attempt_at=later, locked_until=later,
        )  # fmt: skip
    session = make_session(agent)
    post_user(session, "hello")
    turn = Turn.objects.get(session=session)
    doomed = processes.start_worker(log_dir, name="webhook-doomed", **env)
    rescuer = None
    try:
        celery_app.send_task(RUN_TURN_TASK, args=[str(turn.pk)], queue=queue)
        wait_for(lambda: Session.objects.get(pk=session.pk).status == "pending", 30, message="the turn completed")
        delivery = WebhookDelivery.objects.get(session_id=session.pk)
        time.sleep(1)  # its wake-up and a sweep or two came and went: the slot was taken
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("pending", 0)
        doomed.kill()  # SIGKILL
        WebhookDelivery.objects.filter(session_id=held.pk).delete()  # the other attempt ended
        rescuer = processes.start_worker(log_dir, name="webhook-rescuer", **env)
        wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered", 30, message="delivered")
        time.sleep(2)
    finally:
        doomed.kill()
        if rescuer:
            rescuer.kill()
    assert len(receiver.requests) == 1 and receiver.requests[0]["headers"]["webhook-id"] == str(delivery.pk)
    Verifier(webhook.secret).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])
    assert WebhookDelivery.objects.get(pk=delivery.pk).attempts == 1


@pytest.mark.fault
def test_a_worker_killed_mid_send_lets_go_and_the_next_attempt_carries_the_same_id(seeded_tx, log_dir, receiver):
    queue = f"webhook-faults-{settings.RUN_ID}"
    env = {**processes.WORKER_ENV, "CELERY_QUEUE": queue, "WEBHOOK_TIMEOUT_SECONDS": 30}
    receiver.reply({"hang": True})  # the first attempt reaches the receiver and waits there
    agent = make_agent()
    webhook = Webhook.objects.create(
        url=receiver.url, events=["turn.completed"], agent=agent, secret="whsec_" + "B" * 32
    )
    session = make_session(agent)
    post_user(session, "hello")
    doomed = processes.start_worker(log_dir, name="webhook-mid-send", **env)
    rescuer = None
    try:
        celery_app.send_task(RUN_TURN_TASK, args=[str(Turn.objects.get(session=session).pk)], queue=queue)
        wait_for(lambda: len(receiver.requests) == 1, 30, message="the first attempt in flight")
        doomed.kill()  # SIGKILL while the attempt waits for its answer
        delivery = WebhookDelivery.objects.get(session_id=session.pk)
        assert (delivery.status, delivery.attempts) == ("pending", 1) and delivery.locked_until is not None
        # Its claim lapses on its own (time-out + slack); here it is made to lapse now rather than in 35 s.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(locked_until=timezone.now())
        rescuer = processes.start_worker(log_dir, name="webhook-mid-send-rescuer", **env)
        wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered", 30, message="delivered")
    finally:
        doomed.kill()
        if rescuer:
            rescuer.kill()
    assert [r["answer"] for r in receiver.requests] == [None, 200]
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {str(delivery.pk)}
    Verifier(webhook.secret).verify(receiver.requests[1]["body"], receiver.requests[1]["headers"])
    assert WebhookDelivery.objects.get(pk=delivery.pk).attempts == 2


@pytest.mark.fault
def test_schedulers_restarted_across_a_due_time_fire_it_once(seeded_tx, log_dir):
    queue = f"schedule-faults-{settings.RUN_ID}"
    env = {**processes.WORKER_ENV, "CELERY_QUEUE": queue, "SCHEDULE_TICK_SECONDS": 0.5}
    agent = make_agent()
    # Once a year: the only time that can fire here is the missed one set below (a minutely cron fired again when
    # the test ran across a minute's turn).
    schedule = Schedule.objects.create(
        agent=agent, cron="0 0 1 1 *", message={"content": [{"type": "text", "text": "tick"}]}, overlap="queue"
    )
    first = processes.start_worker(log_dir, name="scheduler-doomed", **env)
    first.kill()  # everything is down
    due = timezone.now() + timedelta(seconds=1)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due)
    time.sleep(2)  # the due time passes while no scheduler runs
    workers = []
    try:
        for name in ("scheduler-a", "scheduler-b"):  # two come back at once, both racing for the missed time
            workers.append(processes.start_worker(log_dir, name=name, **env))
        wait_for(lambda: schedule.runs.exists(), 30, message="the missed time fired")
        time.sleep(2)  # a few more ticks of both
    finally:
        for proc in workers:
            proc.kill()
    runs = list(schedule.runs.values_list("scheduled_for", "status"))
    assert runs == [(due, "started")]
    assert Schedule.objects.get(pk=schedule.pk).next_run_at > due
