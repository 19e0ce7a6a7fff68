"""Turn control over HTTP (Django's APIClient on PostgreSQL, committed transactions): cancel, tool approval,
Idempotency-Key (concurrent posts included), `controls.interrupt`, and deleting a session while its turn
runs. Turns run in this process's runtime, as a worker would run them."""

import logging
import threading
import time
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from runner import llm
from runner.runtime import run_turn, runtime
from sessions.models import Event, Message, Session, Turn
from tests.conftest import wait_for
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import event_types, messages, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx", "runtime_connections")

STORY = "Tell me a long story about a lighthouse keeper, a storm, a ship and a cat named Pepper."
SESSION_FIELDS = {
    "id",
    "agent_id",
    "title",
    "tags",
    "model_id",
    "limits",
    "status",
    "error",
    "usage",
    "created_at",
    "updated_at",
}


@pytest.fixture(autouse=True, scope="module")
def _litellm_imported():
    """The first LLM call of a process imports litellm (seconds): not inside a timed test."""
    llm.warm_up()


@pytest.fixture
def api():
    return APIClient()


def url(session, suffix: str = "") -> str:
    return f"/v1/agents/{session.agent_id}/sessions/{session.pk}{suffix}"


def body(text: str, **extra) -> dict:
    return {"message": {"content": [{"type": "text", "text": text}]}, **extra}


def say(api, session, text: str, key: str | None = None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(url(session, "/messages"), body(text, **extra), format="json", **headers)


def cancel(api, session, data=None):
    if data is None:
        return api.post(url(session, "/cancel"))  # no body at all
    return api.post(url(session, "/cancel"), data, format="json")


def approve(api, session, call_id: str, data) -> object:
    return api.post(url(session, f"/tool-calls/{call_id}/approval"), data, format="json")


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def slow_session(tokens_per_second=5, **agent_fields):
    model = make_model(settings={"tokens_per_second": tokens_per_second})
    return make_session(make_agent(**agent_fields), model_id=model.pk)


def start_turn(session, owner="api-test-owner"):
    """Run the session's open turn on this process's runtime without waiting for it."""
    turn = Turn.objects.filter(session=session).order_by("-id").first()
    return turn, runtime().submit(turn.pk, owner)


def wait_streaming(session, seconds=0.6):
    """The turn's LLM call has started and streamed a little."""
    wait_for(lambda: Event.objects.filter(session=session, type="llm.started").exists(), 20, message="llm.started")
    time.sleep(seconds)


def ask_session(api, policy=None):
    """A test_math session whose agent asks before `add` (set over the API), waiting on "7 + 8"."""
    session = make_session(make_agent(capabilities=["test_math"]))
    patched = api.patch(f"/v1/agents/{session.agent_id}", {"tool_policy": policy or {"add": "ask"}}, format="json")
    assert patched.status_code == 200, patched.content
    assert say(api, session, "What is 7 + 8?").status_code == 201
    assert run_active_turn(session).status == "waiting"
    return session


def requested_call(api, session) -> dict:
    items = api.get(url(session, "/events")).json()["items"]
    return next(e for e in items if e["type"] == "tool.approval_requested")["data"]


# --- cancel ---------------------------------------------------------------------------------------------
def test_cancel_of_a_queued_turn_is_202_with_the_session_pending(api):
    session = make_session()
    assert say(api, session, "hello").status_code == 201
    response = cancel(api, session, {"reason": "not now"})
    assert response.status_code == 202, response.content
    answer = response.json()
    assert set(answer) == SESSION_FIELDS
    assert answer["id"] == str(session.pk) and answer["status"] == "pending" and answer["error"] is None
    assert Turn.objects.get(session=session).status == "cancelled"
    events = api.get(url(session, "/events")).json()["items"]
    assert [e["type"] for e in events][-2:] == ["turn.cancelled", "session.status"]
    assert events[-2]["data"] == {"reason": "not now"}
    assert events[-1]["data"] == {"status": "pending", "previous": "running", "error": None}


def test_cancel_with_no_body_or_an_empty_one_is_accepted(api):
    session = make_session()
    say(api, session, "one")
    assert cancel(api, session).status_code == 202
    say(api, session, "two")
    assert cancel(api, session, {}).status_code == 202
    say(api, session, "three")
    assert cancel(api, session, {"reason": None}).status_code == 202
    reasons = [e.data["reason"] for e in Event.objects.filter(session=session, type="turn.cancelled")]
    assert reasons == [None, None, None]


def test_cancel_when_nothing_runs_is_a_409_conflict(api):
    session = make_session()
    error_of(cancel(api, session), 409, "conflict")
    say(api, session, "hello")
    run_active_turn(session)
    error_of(cancel(api, session, {"reason": "late"}), 409, "conflict")
    assert "turn.cancelled" not in event_types(session)
    assert api.get(url(session)).json()["status"] == "pending"


def test_cancel_of_an_unknown_session_or_under_another_agent_is_404(api):
    session = make_session()
    say(api, session, "hello")
    other = make_agent(name="Other")
    error_of(api.post(f"/v1/agents/{session.agent_id}/sessions/{uuid.uuid4()}/cancel"), 404, "not_found")
    error_of(api.post(f"/v1/agents/{other.pk}/sessions/{session.pk}/cancel"), 404, "not_found")
    error_of(api.post(f"/v1/agents/{session.agent_id}/sessions/not-a-uuid/cancel"), 404, "not_found")
    assert Turn.objects.get(session=session).status == "queued"


@pytest.mark.parametrize(
    "data, field",
    [({"reason": "x" * 1001}, "reason"), ({"reason": ["a"]}, "reason")],
)
def test_cancel_with_a_bad_body_is_400_and_cancels_nothing(api, data, field):
    session = make_session()
    say(api, session, "hello")
    error = error_of(cancel(api, session, data), 400, "validation_error")
    assert field in error["details"]
    turn = Turn.objects.get(session=session)
    assert turn.status == "queued" and turn.cancel_requested_at is None


def test_cancel_of_a_streaming_turn_answers_pending_within_two_seconds_and_keeps_the_partial_text(api):
    session = slow_session()
    say(api, session, STORY)
    turn, future = start_turn(session)
    wait_streaming(session)
    started = time.monotonic()
    response = cancel(api, session, {"reason": "enough"})
    elapsed = time.monotonic() - started
    future.result(timeout=5)
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert elapsed < 2.5, elapsed
    partial = api.get(url(session, "/messages")).json()["items"][-1]
    assert partial["role"] == "assistant" and partial["metadata"]["cancelled"] is True
    assert partial["content"][0]["text"].strip()


# --- tool approval ----------------------------------------------------------------------------------------
def test_a_call_awaiting_approval_shows_waiting_and_its_request_in_the_events(api):
    session = ask_session(api)
    assert api.get(url(session)).json()["status"] == "waiting"
    call = requested_call(api, session)
    assert call["name"] == "add" and call["arguments"] == {"a": 7, "b": 8} and call["tool_call_id"]
    types = [e["type"] for e in api.get(url(session, "/events")).json()["items"]]
    assert types[-2:] == ["tool.approval_requested", "session.status"]
    assert "tool.started" not in types


def test_approval_is_202_and_the_turn_goes_on_to_the_answer(api):
    session = ask_session(api)
    call_id = requested_call(api, session)["tool_call_id"]
    response = approve(api, session, call_id, {"approved": True, "reason": "fine"})
    assert response.status_code == 202, response.content
    assert set(response.json()) == SESSION_FIELDS and response.json()["status"] == "running"
    resolved = [e for e in api.get(url(session, "/events")).json()["items"] if e["type"] == "tool.approval_resolved"]
    assert [e["data"] for e in resolved] == [{"tool_call_id": call_id, "approved": True, "reason": "fine"}]
    turn = run_active_turn(session, owner="another-worker")
    assert turn.status == "completed"
    assert api.get(url(session)).json()["status"] == "pending"
    assert api.get(url(session, "/messages")).json()["items"][-1]["content"][0]["text"] == "7 + 8 = 15."


def test_a_denial_over_http_reaches_the_model_as_a_tool_error(api):
    session = ask_session(api)
    call_id = requested_call(api, session)["tool_call_id"]
    assert approve(api, session, call_id, {"approved": False}).status_code == 202
    run_active_turn(session)
    items = api.get(url(session, "/messages")).json()["items"]
    result = next(m for m in items if m["role"] == "tool_result")["content"][0]
    assert result["error"] == "denied" and result["result"] is None
    events = api.get(url(session, "/events")).json()["items"]
    resolved = next(e for e in events if e["type"] == "tool.approval_resolved")
    assert resolved["data"] == {"tool_call_id": call_id, "approved": False, "reason": None}


def test_approval_of_an_unknown_call_is_404_and_a_second_decision_is_409(api):
    session = ask_session(api)
    error_of(approve(api, session, "call_nope", {"approved": True}), 404, "not_found")
    call_id = requested_call(api, session)["tool_call_id"]
    other = make_agent(name="Other")
    response = api.post(
        f"/v1/agents/{other.pk}/sessions/{session.pk}/tool-calls/{call_id}/approval", {"approved": True}, format="json"
    )
    error_of(response, 404, "not_found")
    assert approve(api, session, call_id, {"approved": True}).status_code == 202
    error = error_of(approve(api, session, call_id, {"approved": False}), 409, "conflict")
    assert error["details"]["status"] == "approved"
    assert event_types(session).count("tool.approval_resolved") == 1


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"reason": "no decision"},
        {"approved": None},
        {"approved": "maybe"},
        {"approved": []},
        {"approved": "true", "extra": 1},  # the unknown field is ignored; the string is not a boolean
        {"approved": True, "reason": "x" * 1001},
    ],
)
def test_approval_with_a_bad_body_is_400_and_decides_nothing(api, data):
    session = ask_session(api)
    call_id = requested_call(api, session)["tool_call_id"]
    error = error_of(approve(api, session, call_id, data), 400, "validation_error")
    assert set(error["details"]) & {"approved", "extra", "reason"}
    assert Turn.objects.get(session=session).approvals[call_id]["status"] == "pending"
    assert "tool.approval_resolved" not in event_types(session)


@pytest.mark.parametrize("value", ["yes", "true", "on", 1, 0])
def test_approved_as_a_string_or_a_number_is_400_not_read_as_a_decision(api, value):
    """The contract says `approved: bool`; a client sending "yes" or 0 has a bug we must not act on (a
    person's decision on a tool call is the last place to guess)."""
    session = ask_session(api)
    call_id = requested_call(api, session)["tool_call_id"]
    error = error_of(approve(api, session, call_id, {"approved": value}), 400, "validation_error")
    assert "approved" in error["details"]
    assert Turn.objects.get(session=session).approvals[call_id]["status"] == "pending"


def test_cancel_while_waiting_denies_the_call_and_a_later_approval_is_409(api):
    session = ask_session(api)
    call_id = requested_call(api, session)["tool_call_id"]
    response = cancel(api, session, {"reason": "changed my mind"})
    assert response.status_code == 202 and response.json()["status"] == "pending"
    error_of(approve(api, session, call_id, {"approved": True}), 409, "conflict")
    assert Turn.objects.get(session=session).status == "cancelled"


def test_concurrent_cancels_end_the_turn_once():
    session = make_session()
    say(APIClient(), session, "hello")
    responses = at_once([lambda client: cancel(client, session, {"reason": "stop"})] * 6)
    assert sorted(r.status_code for r in responses) == [202] + [409] * 5
    assert event_types(session).count("turn.cancelled") == 1
    assert Session.objects.get(pk=session.pk).status == "pending"


@pytest.mark.parametrize("attempt", range(3))
def test_an_approval_racing_a_cancel_ends_the_turn_once(api, attempt):
    session = ask_session(api)
    call_id = requested_call(api, session)["tool_call_id"]
    approval, cancelled = at_once(
        [
            lambda client: approve(client, session, call_id, {"approved": True}),
            lambda client: cancel(client, session),
        ]
    )
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "pending"
    assert approval.status_code in (202, 409), approval.content
    run_turn(Turn.objects.get(session=session).pk, "late-worker")  # a queued delivery runs nothing
    assert Turn.objects.get(session=session).status == "cancelled"
    types = event_types(session)
    assert "tool.started" not in types and types.count("turn.cancelled") == 1
    assert types.count("tool.approval_resolved") == 1
    assert Session.objects.get(pk=session.pk).status == "pending"


# --- Idempotency-Key --------------------------------------------------------------------------------------
def test_a_replay_with_the_same_body_returns_the_first_message_and_starts_no_turn(api):
    session = make_session()
    first = say(api, session, "once", key="k-1", metadata={"n": 1})
    again = say(api, session, "once", key="k-1", metadata={"n": 1})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert Message.objects.filter(session=session).count() == 1
    assert Turn.objects.filter(session=session).count() == 1
    assert event_types(session) == ["message.user", "session.status"]


def test_a_replay_after_the_turn_ended_is_still_the_first_message_and_starts_no_turn(api):
    session = make_session()
    first = say(api, session, "once", key="k-done")
    run_active_turn(session)
    again = say(api, session, "once", key="k-done")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Turn.objects.filter(session=session).count() == 1
    assert api.get(url(session)).json()["status"] == "pending"


def test_the_same_request_written_differently_is_a_replay(api):
    """role omitted or "user", `controls: {}` or absent: one request."""
    session = make_session()
    first = say(api, session, "same", key="k-same")
    written = {"message": {"role": "user", "content": [{"type": "text", "text": "same"}]}, "controls": {}}
    again = api.post(url(session, "/messages"), written, format="json", HTTP_IDEMPOTENCY_KEY="k-same")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "changed",
    [
        {"text": "twice"},
        {"text": "once", "metadata": {"n": 2}},
        {"text": "once", "controls": {"reasoning": {"effort": "low"}}},
    ],
)
def test_the_same_key_with_a_different_body_is_409_and_stores_nothing(api, changed):
    session = make_session()
    first = say(api, session, "once", key="k-2", metadata={"n": 1})
    text = changed.pop("text")
    second = say(api, session, text, key="k-2", **{"metadata": {"n": 1}, **changed})
    error_of(second, 409, "conflict")
    items = api.get(url(session, "/messages")).json()["items"]
    assert [m["id"] for m in items] == [first.json()["id"]]
    assert Turn.objects.filter(session=session).count() == 1
    assert event_types(session) == ["message.user", "session.status"]


def test_a_conflicting_key_neither_interrupts_nor_denies_the_running_turn(api):
    session = ask_session(api)
    say(api, session, "first", key="k-3")  # denies the pending call and resumes the turn: a new message
    resolved = event_types(session).count("tool.approval_resolved")
    error_of(say(api, session, "other", key="k-3", controls={"interrupt": True}), 409, "conflict")
    assert event_types(session).count("tool.approval_resolved") == resolved
    assert Turn.objects.get(session=session).interrupt_sequence == 0


def test_the_same_key_on_another_session_is_independent(api):
    one, two = make_session(), make_session()
    a = say(api, one, "hello", key="shared-key")
    b = say(api, two, "hello", key="shared-key")
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    assert Turn.objects.filter(session__in=[one, two]).count() == 2
    c = say(api, two, "different", key="shared-key")
    error_of(c, 409, "conflict")
    assert say(api, one, "hello", key="shared-key").status_code == 200


def test_an_idempotency_key_longer_than_255_characters_is_400(api):
    session = make_session()
    error_of(say(api, session, "hello", key="k" * 256), 400, "validation_error")
    assert not Message.objects.filter(session=session).exists()


def at_once(requests: list) -> list:
    """Call each `request(client)` from its own thread, all released together; each thread has its own
    client and its own database connection, closed when it is done. Returns the responses in order."""
    barrier = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def call(i: int) -> None:
        try:
            client = APIClient()
            barrier.wait(10)
            responses[i] = requests[i](client)
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None for r in responses), "a request thread did not finish"
    return responses


def post_at_once(session, texts: list[str], key: str) -> list:
    """Post one message per text, all with `key`, at once."""
    return at_once([lambda client, text=text: say(client, session, text, key=key) for text in texts])


def test_concurrent_posts_with_one_key_and_one_body_store_one_message_and_start_one_turn():
    session = make_session()
    responses = post_at_once(session, ["only once"] * 8, key="k-parallel")
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Message.objects.filter(session=session).count() == 1
    assert Turn.objects.filter(session=session).count() == 1
    assert event_types(session) == ["message.user", "session.status"]


def test_concurrent_posts_with_one_key_and_different_bodies_store_one_message():
    session = make_session()
    texts = ["apple", "banana"] * 4
    responses = post_at_once(session, texts, key="k-mixed")
    assert [r.status_code for r in responses].count(201) == 1
    winner = texts[[r.status_code for r in responses].index(201)]
    stored = Message.objects.get(session=session)
    assert stored.content[0]["text"] == winner
    for text, response in zip(texts, responses, strict=True):
        if text == winner:
            assert response.status_code in (200, 201) and response.json()["id"] == str(stored.pk)
        else:
            error_of(response, 409, "conflict")
    assert Turn.objects.filter(session=session).count() == 1


def test_concurrent_posts_with_one_key_and_all_bodies_different_give_one_201_and_409s():
    session = make_session()
    responses = post_at_once(session, [f"text {i}" for i in range(8)], key="k-distinct")
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert Message.objects.filter(session=session).count() == 1
    assert Turn.objects.filter(session=session).count() == 1


# --- controls.interrupt -------------------------------------------------------------------------------------
def test_interrupt_true_or_false_is_accepted_and_stored(api):
    session = make_session()
    response = say(api, session, "hello", controls={"interrupt": True})
    assert response.status_code == 201 and response.json()["controls"] == {"interrupt": True}
    assert say(api, session, "again", controls={"interrupt": False}).status_code == 201


# A string or a number is not a JSON boolean, though DRF's BooleanField reads "yes", "true", 1 and 0 as ones.
@pytest.mark.parametrize("value", ["maybe", [], {}, "yes", "true", 1, 0])
def test_interrupt_that_is_not_a_bool_is_400(api, value):
    session = make_session()
    error = error_of(say(api, session, "hello", controls={"interrupt": value}), 400, "validation_error")
    assert "controls" in error["details"]
    assert not Message.objects.filter(session=session).exists()


def test_interrupt_over_http_answers_the_new_message(api):
    session = slow_session(tokens_per_second=10)
    say(api, session, STORY)
    turn, future = start_turn(session)
    wait_streaming(session)
    assert say(api, session, "What is 2 + 3?", controls={"interrupt": True}).status_code == 201
    future.result(timeout=30)
    items = api.get(url(session, "/messages")).json()["items"]
    assert [(m["role"], (m["metadata"] or {}).get("interrupted")) for m in items] == [
        ("user", None),
        ("user", None),
        ("assistant", True),
        ("assistant", None),
    ]
    assert "2 + 3 = 5" in items[-1]["content"][0]["text"]


# --- delete while a turn runs ------------------------------------------------------------------------------
def test_deleting_a_session_while_its_turn_streams_stops_the_worker_with_no_writes_and_no_failure(api, caplog):
    caplog.set_level(logging.INFO)
    session = slow_session()
    say(api, session, STORY)
    turn, future = start_turn(session)
    wait_streaming(session)
    started = time.monotonic()
    assert api.delete(url(session)).status_code == 204
    future.result(timeout=5)  # the runner let go of the turn
    assert time.monotonic() - started < 3, "the in-flight LLM call was not abandoned"
    time.sleep(0.5)
    assert not Session.objects.filter(pk=session.pk).exists() and not Turn.objects.filter(pk=turn.pk).exists()
    assert not Message.objects.filter(session_id=session.pk).exists()
    assert not Event.objects.filter(session_id=session.pk).exists()
    assert turn.pk not in runtime().tasks and turn.pk not in runtime().leases
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING or "crashed" in r.getMessage()]
    assert not problems, [(r.name, r.getMessage()) for r in problems]
    error_of(api.get(url(session)), 404, "not_found")


def test_deleting_a_session_while_a_call_awaits_approval_leaves_nothing_to_approve(api):
    session = ask_session(api)
    call_id = requested_call(api, session)["tool_call_id"]
    turn = Turn.objects.get(session=session)
    assert api.delete(url(session)).status_code == 204
    error_of(approve(api, session, call_id, {"approved": True}), 404, "not_found")
    run_turn(turn.pk, "late-worker")  # a stale delivery finds nothing to run
    assert not Event.objects.filter(session_id=session.pk).exists()
    assert messages(session) == []
