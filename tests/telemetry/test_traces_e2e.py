"""Traces on the Procfile shape: a web and worker processes of their own exporting over OTLP/HTTP to a
receiver in the test, which decodes with opentelemetry-proto."""

import json
import secrets

import pytest
import requests
from django.conf import settings

from everruns.celery import RUN_TURN_TASK
from everruns.celery import app as celery_app
from sessions.models import Event, Session, Turn
from tests import processes
from tests.conftest import wait_for
from tests.e2e.client import open_session
from tests.factories import make_model
from tests.telemetry.otlp import OtlpReceiver

pytestmark = [pytest.mark.e2e]
QUEUE = f"traces-{settings.RUN_ID}"


@pytest.fixture
def receiver():
    server = OtlpReceiver().start()
    yield server
    server.stop()


def _otel_env(receiver: OtlpReceiver, **extra) -> dict:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": 100,
        "CELERY_QUEUE": QUEUE,
        **extra,
    }


@pytest.fixture
def traced(seeded_tx, receiver, log_dir):
    """(base URL, start_worker) with tracing on in every process; the workers started are stopped at the end."""
    workers = []
    web, url = processes.start_web(
        log_dir, **processes.WEB_ENV, **_otel_env(receiver, OTEL_SERVICE_NAME="everruns-web")
    )

    def start_worker(name: str, **extra):
        env = {**processes.WORKER_ENV, "TURN_LEASE_SECONDS": 3, **_otel_env(receiver, OTEL_SERVICE_NAME=name), **extra}
        worker = processes.start_worker(log_dir, name=name, **env)
        workers.append(worker)
        return worker

    try:
        yield url, start_worker
    finally:
        for worker in workers:
            worker.kill()
        web.stop()


def _traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


def _spans_named(spans: list[dict], prefix: str) -> list[dict]:
    return [s for s in spans if s["name"].startswith(prefix)]


def _session_of(session_url: str) -> Session:
    return Session.objects.get(pk=session_url.rsplit("/", 1)[1])


def test_a_tool_turn_is_one_trace_under_the_post_that_queued_it(traced, receiver):
    url, start_worker = traced
    start_worker("traced-worker")
    session_url = open_session(url, agent={"name": "calculator", "capabilities": ["test_math"]})
    header, trace_id, parent_id = _traceparent()
    posted = requests.post(
        f"{session_url}/messages",
        json={"message": {"content": [{"type": "text", "text": "What is 7 + 8?"}]}},
        headers={"traceparent": header},
    )
    assert posted.status_code == 201, posted.text
    session = _session_of(session_url)
    wait_for(lambda: _spans_named(receiver.of_trace(trace_id), "invoke_agent"), 60, message="the invoke_agent span")
    spans = receiver.of_trace(trace_id)
    (post,) = [s for s in spans if s["attributes"].get("http.route", "").endswith("/messages")]
    assert post["parent_span_id"] == parent_id and post["name"].startswith("POST v1/agents/<uuid:agent_id>")
    assert post["service"] == "everruns-web"
    (invoke,) = _spans_named(spans, "invoke_agent")
    assert invoke["name"] == "invoke_agent calculator" and invoke["parent_span_id"] == post["span_id"]
    assert invoke["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert invoke["attributes"]["gen_ai.conversation.id"] == str(session.pk)
    chats = sorted(_spans_named(spans, "chat "), key=lambda s: s["start"])
    (tool,) = _spans_named(spans, "execute_tool")
    assert len(chats) == 2 and {s["parent_span_id"] for s in [*chats, tool]} == {invoke["span_id"]}
    completed = list(Event.objects.filter(session=session, type="llm.completed").order_by("sequence"))
    for chat, event in zip(chats, completed, strict=True):
        attributes = chat["attributes"]
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "llmsim"
        assert chat["name"] == f"chat {attributes['gen_ai.request.model']}" and attributes["gen_ai.request.model"]
        assert attributes["gen_ai.usage.input_tokens"] == event.data["usage"]["input_tokens"]
        assert attributes["gen_ai.usage.output_tokens"] == event.data["usage"]["output_tokens"]
        assert attributes["gen_ai.response.finish_reasons"] == [event.data["finish_reason"]]
    assert chats[0]["end"] <= tool["start"] <= tool["end"] <= chats[1]["start"]
    call = Event.objects.get(session=session, type="tool.completed").data
    assert tool["name"] == "execute_tool add"
    assert tool["attributes"]["gen_ai.tool.name"] == "add"
    assert tool["attributes"]["gen_ai.tool.call.id"] == call["tool_call_id"]
    assert invoke["start"] <= chats[0]["start"] and chats[1]["end"] <= invoke["end"]
    # No message text without OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT.
    dumped = json.dumps(spans)
    assert "7 + 8" not in dumped and "15" not in json.dumps([s["attributes"] for s in chats + [tool]])
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output")) for s in spans for k in s["attributes"])


def test_content_is_captured_with_the_opt_in(traced, receiver):
    url, start_worker = traced
    start_worker("content-worker", OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    session_url = open_session(url, agent={"name": "calculator", "capabilities": ["test_math"]})
    header, trace_id, _ = _traceparent()
    posted = requests.post(
        f"{session_url}/messages",
        json={"message": {"content": [{"type": "text", "text": "What is 7 + 8?"}]}},
        headers={"traceparent": header},
    )
    assert posted.status_code == 201
    wait_for(lambda: _spans_named(receiver.of_trace(trace_id), "invoke_agent"), 60, message="the invoke_agent span")
    chats = sorted(_spans_named(receiver.of_trace(trace_id), "chat "), key=lambda s: s["start"])
    assert "What is 7 + 8?" in chats[0]["attributes"]["gen_ai.input.messages"]
    assert "7 + 8 = 15" in chats[1]["attributes"]["gen_ai.output.messages"]


@pytest.mark.fault
def test_a_worker_killed_mid_turn_still_gives_one_invoke_agent_span(traced, receiver):
    url, start_worker = traced
    slow = make_model(model_id="llmsim-slow-trace", settings={"latency_ms": 4000})
    session_url = open_session(url, agent={"name": "slowpoke"}, session={"model_id": str(slow.pk)})
    session = _session_of(session_url)
    header, trace_id, _ = _traceparent()
    # Leases long enough that no sweeper (the suite's other workers sweep too) hands the turn on by itself: the
    # test hands it to the rescuer the way a sweeper does (lease released, task queued), so the rescuer resumes it.
    doomed = start_worker("doomed-traced", TURN_LEASE_SECONDS=60)
    posted = requests.post(
        f"{session_url}/messages",
        json={"message": {"content": [{"type": "text", "text": "What is 4 + 4?"}]}},
        headers={"traceparent": header},
    )
    assert posted.status_code == 201
    wait_for(lambda: Event.objects.filter(session=session, type="llm.started").exists(), 30, message="llm.started")
    doomed.kill()  # SIGKILL, mid LLM call
    start_worker("rescuer-traced", TURN_LEASE_SECONDS=60)
    turn = Turn.objects.get(session=session)
    assert turn.status == "running"
    Turn.objects.filter(pk=turn.pk).update(lease_owner="")
    celery_app.send_task(RUN_TURN_TASK, args=[str(turn.pk)], queue=QUEUE)
    wait_for(lambda: Turn.objects.get(session=session).status == "completed", 60, message="the turn taken over")
    wait_for(lambda: _spans_named(receiver.of_trace(trace_id), "invoke_agent"), 30, message="the invoke_agent span")
    spans = receiver.of_trace(trace_id)
    (invoke,) = _spans_named(spans, "invoke_agent")
    assert invoke["service"] == "rescuer-traced"
    chats = sorted(_spans_named(spans, "chat"), key=lambda s: s["start"])
    assert [s["parent_span_id"] for s in chats] == [invoke["span_id"]] * 2
    abandoned, answered = chats
    assert abandoned["attributes"]["error.type"] == "abandoned" and abandoned["status"] == 2  # STATUS_CODE_ERROR
    assert answered["attributes"]["gen_ai.usage.output_tokens"] > 0 and "error.type" not in answered["attributes"]
    assert not [s for s in spans if s["service"] == "doomed-traced"]


def test_a_turn_queued_by_the_ai_sdk_route_is_in_the_trace_of_that_post(traced, receiver):
    url, start_worker = traced
    start_worker("chat-worker")
    session_url = open_session(url, agent={"name": "chatty"})
    header, trace_id, parent_id = _traceparent()
    body = {
        "trigger": "submit-message",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
    }
    with requests.post(
        f"{session_url}/chat", json=body, headers={"traceparent": header}, stream=True, timeout=(5, 60)
    ) as answer:
        assert answer.status_code == 200
        assert b"[DONE]" in b"".join(answer.iter_content(None))
    wait_for(lambda: _spans_named(receiver.of_trace(trace_id), "invoke_agent"), 60, message="the invoke_agent span")
    spans = receiver.of_trace(trace_id)
    (post,) = [s for s in spans if s["attributes"].get("http.route", "").endswith("/chat")]
    assert post["parent_span_id"] == parent_id and post["attributes"]["http.response.status_code"] == 200
    (invoke,) = _spans_named(spans, "invoke_agent")
    assert invoke["name"] == "invoke_agent chatty" and invoke["parent_span_id"] == post["span_id"]
    assert [s["parent_span_id"] for s in _spans_named(spans, "chat ")] == [invoke["span_id"]]
