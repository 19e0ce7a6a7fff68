"""Traces built from a turn's log (the SDK's in-memory exporter), the histogram's exposition, and that with
tracing off nothing of OpenTelemetry is loaded."""

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from everruns.telemetry import counters, tracing
from everruns.telemetry.metrics import _histogram

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
TRACE_ID, PARENT_ID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
TURN_ID = uuid.UUID("01930000-0000-7000-8000-000000000001")
SESSION_ID = uuid.UUID("01930000-0000-7000-8000-000000000002")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(seconds: float, type: str, **data) -> dict:
    return {"type": type, "data": data, "created_at": at(seconds)}


@pytest.fixture
def exported():
    exporter = InMemorySpanExporter()
    provider = tracing.new_provider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tracing.installed(provider):
        yield exporter


def turn_row(**overrides) -> dict:
    row = {
        "status": "completed",
        "created_at": at(0),
        "finished_at": at(30),
        "trace_context": {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        "error": None,
        "iterations": 2,
        "input_tokens": 30,
        "output_tokens": 12,
        "session_id": SESSION_ID,
        "session__agent_id": uuid.UUID(int=7),
        "session__agent__name": "calculator",
    }
    return {**row, **overrides}


# A crash (the first llm.started never completed), a retry, an approval, a tool that failed, the answer.
EVENTS = [
    ev(0.1, "turn.started"),
    ev(0.2, "llm.started", iteration=1, model="m-1"),
    ev(10, "llm.started", iteration=1, model="m-1"),
    ev(10.5, "llm.retrying", attempt=1, delay_ms=500, error={"code": "llm_rate_limited", "message": "slow down"}),
    ev(12, "llm.completed", iteration=1, model="m-1", usage={"input_tokens": 10, "output_tokens": 5},
       duration_ms=1500, finish_reason="tool_calls"),
    ev(12.1, "tool.approval_requested", tool_call_id="call_1", name="add", arguments={}),
    ev(20, "tool.approval_resolved", tool_call_id="call_1", approved=True, reason=None),
    ev(20.1, "tool.started", tool_call_id="call_1", name="add", arguments={"a": 1}),
    ev(20.3, "tool.completed", tool_call_id="call_1", name="add", status="error", result=None, error="boom",
       duration_ms=200),
    ev(21, "llm.started", iteration=2, model="m-1"),
    ev(22, "llm.completed", iteration=2, model="m-1", usage={"input_tokens": 20, "output_tokens": 7},
       duration_ms=1000, finish_reason="stop"),
    ev(30, "turn.completed"),
]  # fmt: skip


def by_name(exporter) -> dict[str, list]:
    spans: dict[str, list] = {}
    for span in exporter.get_finished_spans():
        spans.setdefault(span.name, []).append(span)
    return spans


def test_a_turn_is_one_invoke_agent_span_under_the_stored_context_with_its_calls_under_it(exported):
    tracing.emit_turn(TURN_ID, turn_row(), EVENTS, None, provider_of=lambda model: "llmsim")
    spans = by_name(exported)
    (root,) = spans["invoke_agent calculator"]
    assert root.context.trace_id == int(TRACE_ID, 16) and root.parent.span_id == int(PARENT_ID, 16)
    assert root.context.span_id == tracing.turn_span_id(TURN_ID)  # the same wherever the turn ends
    assert root.start_time == tracing._ns(at(0)) and root.end_time == tracing._ns(at(30))
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.usage.input_tokens"] == 30
    assert [e.name for e in root.events] == ["gen_ai.approval.requested", "gen_ai.approval.resolved"]
    chats = sorted(spans["chat m-1"], key=lambda s: s.start_time)
    assert len(chats) == 3 and {s.parent.span_id for s in chats} == {root.context.span_id}
    abandoned, first, second = chats
    assert abandoned.attributes["error.type"] == "abandoned" and abandoned.status.status_code == StatusCode.ERROR
    assert abandoned.end_time == tracing._ns(at(10))
    assert first.start_time == tracing._ns(at(10)) and first.end_time == tracing._ns(at(12))
    assert [e.name for e in first.events] == ["gen_ai.retry"]
    assert first.events[0].attributes["error.type"] == "llm_rate_limited"
    assert first.attributes["gen_ai.provider.name"] == "llmsim"
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert (second.attributes["gen_ai.usage.input_tokens"], second.attributes["gen_ai.usage.output_tokens"]) == (20, 7)
    (tool,) = spans["execute_tool add"]
    assert tool.parent.span_id == root.context.span_id and tool.status.status_code == StatusCode.ERROR
    assert tool.attributes["gen_ai.tool.call.id"] == "call_1" and tool.start_time == tracing._ns(at(20.1))
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.tool.call.result")) for s in
                   exported.get_finished_spans() for k in s.attributes)  # fmt: skip


def test_a_failed_turn_is_an_error_span_and_a_cancelled_one_has_the_cancel_as_an_event(exported):
    error = {"code": "llm_timeout", "message": "The LLM call timed out"}
    failed_events = [ev(1, "llm.started", iteration=1, model="m"), ev(5, "turn.failed", error=error)]
    tracing.emit_turn(TURN_ID, turn_row(status="failed", error=error), failed_events, None, provider_of=str)
    cancelled_id = uuid.uuid4()
    tracing.emit_turn(cancelled_id, turn_row(status="cancelled"), [ev(2, "turn.cancelled", reason="user")], None)
    failed, cancelled = (s for s in exported.get_finished_spans() if s.name.startswith("invoke_agent"))
    assert failed.status.status_code == StatusCode.ERROR and failed.attributes["error.type"] == "llm_timeout"
    assert [e.name for e in failed.events] == ["gen_ai.turn.failed"]
    assert [e.name for e in cancelled.events] == ["gen_ai.turn.cancelled"]
    assert cancelled.context.span_id == tracing.turn_span_id(cancelled_id) != failed.context.span_id


def test_message_text_only_with_the_opt_in(exported, settings):
    user = {"role": "user", "content": [{"type": "text", "text": "What is 7 + 8?"}], "metadata": {}, "turn_id": None}
    answer = {"role": "assistant", "content": [{"type": "text", "text": "7 + 8 = 15."}], "metadata": {}}
    completed = {"iteration": 1, "model": "m", "usage": {}, "duration_ms": 900, "finish_reason": "stop"}
    events = [ev(1, "llm.started", iteration=1, model="m"), ev(2, "llm.completed", **completed)]
    settings.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = True
    tracing.emit_turn(TURN_ID, turn_row(), events, [user, {**answer, "turn_id": TURN_ID}], provider_of=str)
    (chat,) = by_name(exported)["chat m"]
    assert "What is 7 + 8?" in chat.attributes["gen_ai.input.messages"]
    assert "7 + 8 = 15." in chat.attributes["gen_ai.output.messages"]


def test_the_histogram_is_cumulative_over_the_stored_buckets():
    labels = (("model", "m"),)
    values = {
        ("everruns_llm_call_duration_seconds_bucket", (*labels, ("le", "0.5"))): 2,
        ("everruns_llm_call_duration_seconds_bucket", (*labels, ("le", "+Inf"))): 1,
        ("everruns_llm_call_duration_seconds_sum", labels): 400.5,
    }
    samples = {(s.name, s.labels.get("le")): s.value for s in _histogram(values).samples}
    assert samples[("everruns_llm_call_duration_seconds_bucket", "0.25")] == 0
    assert samples[("everruns_llm_call_duration_seconds_bucket", "0.5")] == 2
    assert samples[("everruns_llm_call_duration_seconds_bucket", str(counters.DURATION_BUCKETS[-1]))] == 2
    assert samples[("everruns_llm_call_duration_seconds_bucket", "+Inf")] == 3
    assert samples[("everruns_llm_call_duration_seconds_count", None)] == 3
    assert samples[("everruns_llm_call_duration_seconds_sum", None)] == 400.5


def test_without_the_endpoint_no_process_loads_opentelemetry():
    """The web's and the worker's modules, set up as a process would, with OTEL_EXPORTER_OTLP_ENDPOINT unset."""
    script = (
        "import sys, django; django.setup();"
        "import everruns.front.bridge, everruns.front.counted, sessions.log, sessions.turns;"
        "from everruns.telemetry import tracing;"
        "assert not tracing.ON and tracing.trace_context() is None;"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', 'opentelemetry.exporter'))];"
        "assert not loaded, loaded"
    )
    # (redis-py 8 imports opentelemetry.sdk.metrics by itself when it is installed, for its own opt-in metrics:
    # not ours to avoid; the tracing SDK and the exporter are.)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
