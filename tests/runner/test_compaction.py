"""Context compaction in real turns (llmsim, in this process's runtime, on PostgreSQL): long sessions go on;
what the model sees is compacted, the stored messages never change, each compaction is stored once."""

import asyncio
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from litellm import ContextWindowExceededError
from rest_framework.test import APIClient

from runner import llm
from runner.compaction import prompt
from runner.llm import sim
from runner.runtime import run_turn
from sessions.fs import files
from sessions.models import Event, Message, Session, Turn
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import long_message, post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx")
WINDOW = 2000


@pytest.fixture(autouse=True, scope="module")
def _litellm_imported():
    llm.warm_up()


def small_model(**settings):
    return make_model(model_id="llmsim-2k", model_settings={"context_window": WINDOW}, settings=settings)


def numbers_of(i: int) -> list[str]:
    return [str(1000 + 7 * i), str(90000 + i)]


def event_types(session, turn) -> list[str]:
    return list(
        Event.objects.filter(session=session, turn_id=turn.pk).order_by("sequence").values_list("type", flat=True)
    )


def compactions(session) -> list[Event]:
    return list(Event.objects.filter(session=session, type="context.compacted").order_by("sequence"))


def test_a_session_of_thirty_long_turns_on_a_small_window_completes_every_turn():
    session = make_session(make_agent(), model_id=small_model().pk)
    sent = []
    for i in range(1, 31):
        sent.append(long_message(i))
        post_user(session, sent[-1])
        assert run_active_turn(session).status == "completed", i
    events = compactions(session)
    assert len(events) >= 3
    # Every call's input stays under the window (llmsim reports its own count, the one it enforces).
    inputs = [e.data["usage"]["input_tokens"] for e in Event.objects.filter(session=session, type="llm.completed")]
    assert len(inputs) == 30 and max(inputs) <= WINDOW
    # The numbers of the first turns survive, in the latest summary.
    latest = events[-1].data["summary"]
    for i in (1, 2, 3):
        for number in numbers_of(i):
            assert number in latest, (number, latest)
    for event in events:
        assert event.data["tokens_after"] < event.data["tokens_before"]
        assert event.data["model"] == "llmsim-2k" and event.data["usage"]["input_tokens"] > 0
    # The stored messages are what was posted and answered, untouched.
    stored = list(Message.objects.filter(session=session).order_by("sequence"))
    assert [m.role for m in stored] == ["user", "assistant"] * 30
    assert [m.content[0]["text"] for m in stored if m.role == "user"] == sent


def summary_of_the_fake(body: dict):
    """The fake provider writes a summary when asked for one (and answers everything else from its script)."""
    messages = body.get("messages") or []
    if prompt.is_summary_request(messages):
        found = re.findall(r"\d+", messages[-1]["content"])
        return {
            "text": "Summary: the user talked about " + ", ".join(found[:40]),
            "usage": {"prompt_tokens": 50, "completion_tokens": 9},
        }
    return None


def test_a_providers_context_length_error_triggers_one_compaction_and_a_retry(fake_llm, fake_model):
    session = make_session(make_agent(system_prompt="Be brief."), model_id=fake_model.pk)
    for i in range(1, 5):
        fake_llm.reply({"text": f"noted {i}"})
        post_user(session, long_message(i))
        assert run_active_turn(session).status == "completed"
    assert not compactions(session)  # litellm does not know this model's window: nothing compacted so far
    fake_llm.respond = summary_of_the_fake
    fake_llm.max_context_chars = 5000  # the next call's context is longer: the provider refuses it
    fake_llm.reply({"text": "the answer"})
    requests_before = len(fake_llm.requests)
    post_user(session, long_message(5))
    turn = run_active_turn(session)
    assert turn.status == "completed", turn.error
    [event] = compactions(session)
    assert event.data["reason"] == "overflow" and event.data["tokens_after"] < event.data["tokens_before"]
    assert all(n in event.data["summary"] for n in numbers_of(1))
    sent = fake_llm.requests[requests_before:]
    refused, retry = sent[0], sent[-1]
    assert len(json.dumps(refused["messages"])) > 5000
    assert len(json.dumps(retry["messages"])) <= 5000
    assert prompt.SUMMARY_HEADER.strip() in retry["messages"][1]["content"]
    assert retry["messages"][-1]["content"] == long_message(5)  # the latest message, whole
    assert Message.objects.filter(session=session, role="assistant").last().content[0]["text"] == "the answer"
    types = list(Event.objects.filter(session=session, turn_id=turn.pk).values_list("type", flat=True))
    assert types.count("llm.completed") == 1 and "turn.failed" not in types


def fill(session, turns: int) -> None:
    for i in range(1, turns + 1):
        post_user(session, long_message(i))
        assert run_active_turn(session).status == "completed"


def test_a_worker_killed_during_the_compaction_call_resumes_with_one_compaction(monkeypatch):
    session = make_session(make_agent(), model_id=small_model().pk)
    fill(session, 4)
    real = llm.stream_completion
    summary_calls = []

    async def dies_in_the_summary_call(**kwargs):
        if prompt.is_summary_request(kwargs["messages"]):
            summary_calls.append(1)
            if len(summary_calls) == 1:
                raise asyncio.CancelledError  # the worker is gone mid-call: nothing more is written
        return await real(**kwargs)

    monkeypatch.setattr(llm, "stream_completion", dies_in_the_summary_call)
    post_user(session, long_message(5))
    turn = Turn.objects.filter(session=session).order_by("-id").first()
    run_turn(turn.pk, "dying-worker")
    turn.refresh_from_db()
    assert turn.status == "running" and not compactions(session)
    # Its lease lapses; another worker takes the turn over.
    Turn.objects.filter(pk=turn.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_turn(turn.pk, "rescuer")
    turn.refresh_from_db()
    assert turn.status == "completed"
    assert len(compactions(session)) == 1 and len(summary_calls) >= 2
    types = list(Event.objects.filter(session=session, turn_id=turn.pk).values_list("type", flat=True))
    assert types.count("llm.completed") == 1 and types.count("turn.completed") == 1


def test_the_compaction_counts_toward_the_turn_the_session_and_their_budgets():
    session = make_session(make_agent(), model_id=small_model().pk)
    fill(session, 5)
    [event] = compactions(session)
    compacted = event.data["usage"]
    calls = list(Event.objects.filter(session=session, type="llm.completed"))
    stored = Session.objects.get(pk=session.pk)
    assert stored.input_tokens == sum(e.data["usage"]["input_tokens"] for e in calls) + compacted["input_tokens"]
    assert stored.output_tokens == sum(e.data["usage"]["output_tokens"] for e in calls) + compacted["output_tokens"]
    turn = Turn.objects.get(pk=event.turn_id)
    own = [e for e in calls if e.turn_id == turn.pk]
    assert turn.input_tokens == own[0].data["usage"]["input_tokens"] + compacted["input_tokens"]
    assert turn.iterations == 1  # the summary call is no step of the conversation
    completed = Event.objects.get(session=session, turn_id=turn.pk, type="turn.completed")
    assert completed.data["usage"]["input_tokens"] == turn.input_tokens


def test_a_budget_the_compaction_used_up_ends_the_turn_before_its_call():
    session = make_session(make_agent(), model_id=small_model().pk)
    fill(session, 4)
    used = Session.objects.get(pk=session.pk)
    limit = used.input_tokens + used.output_tokens + 100  # enough for the call, not for the summary first
    Session.objects.filter(pk=session.pk).update(limits={"max_tokens": limit})
    post_user(session, long_message(5))
    turn = run_active_turn(session)
    assert turn.status == "failed" and turn.error["code"] == "budget_exceeded"
    assert len(compactions(session)) == 1
    assert not Event.objects.filter(session=session, turn_id=turn.pk, type="llm.started").exists()


def compact_url(session) -> str:
    return f"/v1/agents/{session.agent_id}/sessions/{session.pk}/compact"


def test_compact_on_request_runs_on_a_worker_and_always_emits_one_compaction():
    session = make_session(make_agent(), model_id=small_model().pk)
    fill(session, 2)  # far under the threshold: nothing compacted by itself
    api = APIClient()
    response = api.post(compact_url(session))
    assert response.status_code == 202 and response.json()["status"] == "running"
    assert api.post(compact_url(session)).status_code == 409  # its own turn is open
    turn = run_active_turn(session)
    assert turn.status == "completed" and turn.iterations == 0
    [event] = compactions(session)
    assert event.data["reason"] == "requested" and event.data["through_sequence"] == 4  # all four messages
    assert all(n in event.data["summary"] for i in (1, 2) for n in numbers_of(i))
    types = [t for t in event_types(session, turn) if t != "session.status"]
    assert types == ["turn.started", "context.compacted", "turn.completed"]
    assert Session.objects.get(pk=session.pk).status == "pending"
    # The next turn starts from the summary, with its own message whole.
    post_user(session, "What was the first invoice total?")
    assert run_active_turn(session).status == "completed"
    sent = Event.objects.filter(session=session, type="llm.completed").last().data["usage"]["input_tokens"]
    assert sent < 200


def test_compact_is_refused_while_a_turn_runs_and_changes_nothing():
    session = make_session(make_agent(), model_id=small_model().pk)
    post_user(session, "hello")  # its turn is queued
    response = APIClient().post(compact_url(session))
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert Turn.objects.filter(session=session).count() == 1


def test_compact_of_a_session_with_nothing_to_summarise_still_emits_a_compaction():
    session = make_session(make_agent(), model_id=small_model().pk)
    assert APIClient().post(compact_url(session)).status_code == 202
    assert run_active_turn(session).status == "completed"
    [event] = compactions(session)
    assert event.data["summary"] == "" and event.data["through_sequence"] == 0
    assert event.data["usage"]["input_tokens"] == 0


def test_llmsim_answers_an_input_over_its_window_with_the_providers_overflow_error():
    session = make_session(
        make_agent(), model_id=make_model(model_id="llmsim-tiny", model_settings={"context_window": 100}).pk
    )
    post_user(session, "x" * 2000)  # 500 tokens: the latest message alone is over the window
    turn = run_active_turn(session)
    assert turn.status == "failed" and turn.error["code"] == "context_window_exceeded"
    assert "context window of 100" in turn.error["message"]
    with pytest.raises(ContextWindowExceededError):
        sim.check_window("llmsim/llmsim-tiny", 101, 100)


def test_llmsim_summarises_deterministically_keeping_every_number():
    text = prompt.transcript(
        "Earlier: 12 apples", [{"role": "user", "content": "Pay 3.50 EUR on 2026-12-07 for file report_7.pdf"}]
    )
    request = [{"role": "system", "content": prompt.summary_prompt(100)}, {"role": "user", "content": text}]
    summary = sim.summarise(request)
    assert summary == sim.summarise(request)
    for number in prompt.NUMBER.findall(text):
        assert number in summary


def test_old_tool_results_are_shortened_first_and_say_so_while_the_newest_stays_whole(fake_llm):
    model = make_model(
        provider_type="openai_compatible",
        model_id="fake-model",
        base_url=fake_llm.base_url,
        model_settings={"context_window": 5000},  # both results whole: ~4,900 tokens
    )
    session = make_session(make_agent(capabilities=["session_file_system"]), model_id=model.pk)
    content = " ".join(f"line{i} of the report" for i in range(400))  # ~1,200 tokens
    files.create(session.pk, "/report.txt", content=content)
    fake_llm.respond = summary_of_the_fake  # (a summary call, were there one, takes nothing of the script)
    for i in (1, 2):
        fake_llm.reply(
            {"tool_calls": [{"id": f"call_read_{i}", "name": "read_file", "arguments": {"path": "/report.txt"}}]},
            {"text": f"read {i}"},
        )
        post_user(session, f"Read the report, please ({i}).")
        assert run_active_turn(session).status == "completed"
    last = fake_llm.requests[-1]["messages"]
    results = [m["content"] for m in last if m["role"] == "tool"]
    assert len(results) == 2
    assert "shortened to fit the context window" in results[0]
    assert content[:100] in results[0] and len(results[0]) < len(content) // 2
    assert content in results[1]  # the result the model is about to answer: whole
    assert not compactions(session)  # shortening was enough
    stored = [m.content[0]["result"] for m in Message.objects.filter(session=session, role="tool_result")]
    assert all(content in json.dumps(r) for r in stored)  # the log keeps every result whole


def test_a_message_posted_while_a_requested_compaction_waits_is_answered_by_that_turn_after_it():
    session = make_session(make_agent(), model_id=small_model().pk)
    fill(session, 2)
    assert APIClient().post(compact_url(session)).status_code == 202
    post_user(session, "And the second invoice total?")  # joins the open turn
    turn = run_active_turn(session)
    assert turn.status == "completed" and turn.iterations == 1
    types = [t for t in event_types(session, turn) if t.startswith(("context.", "llm.", "turn."))]
    assert types == ["turn.started", "context.compacted", "llm.started", "llm.completed", "turn.completed"]
    answer = Message.objects.filter(session=session, role="assistant").last()
    assert answer.turn_id == turn.pk and "second invoice total" in answer.content[0]["text"]
