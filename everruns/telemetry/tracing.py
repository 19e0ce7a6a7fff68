"""OpenTelemetry traces, GenAI semantic conventions, set up only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

Off (the default), nothing of OpenTelemetry is imported and every hook is a check of `ON`.

On, the web process gives each Django request a server span that continues an incoming W3C `traceparent`;
the POST that queues a turn stores its span context with the turn (`Turn.trace_context`). A turn's
`invoke_agent {agent}` span and its `chat {model}` and `execute_tool {tool}` children are built once, when
the turn ends (in whichever process ends it), from the durable log: the turn's events have the times,
models, usage, finish reasons, tool calls and results, whichever workers wrote them. So a turn that
resumed on another worker after a crash, or hours later after an approval, is still one `invoke_agent`
span with all of its work under it, and a worker that dies exports nothing half done. The span id of
`invoke_agent` is derived from the turn id (`turn_span_id`), so a trace rebuilt twice would collapse.
"""

import contextlib
import contextvars
import hashlib
import json
import logging
import threading
import uuid
from datetime import datetime

from django.apps import apps
from django.conf import settings
from django.db import close_old_connections, transaction

from everruns.telemetry import counters

logger = logging.getLogger(__name__)

ON = False  # the hooks' one check: tracing is set up in this process
_tracer = None
_ended: list = []  # turn ids that ended (committed) and whose spans are to be built
_ended_lock = threading.Lock()
_forced_span_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("forced_span_id", default=None)

TURN_END_EVENTS = {"turn.completed", "turn.failed", "turn.cancelled"}
# Log events shown as span events of the turn's invoke_agent span (besides the ones that make child spans).
SPAN_EVENTS = {
    "tool.approval_requested": "gen_ai.approval.requested",
    "tool.approval_resolved": "gen_ai.approval.resolved",
    "turn.cancelled": "gen_ai.turn.cancelled",
    "turn.failed": "gen_ai.turn.failed",
}


def setup() -> None:
    """Every process (web and worker) from AppConfig.ready: the OTLP/HTTP exporter when configured."""
    if ON or not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return
    # Imported here: without the setting nothing of OpenTelemetry is loaded.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    provider = new_provider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads the standard OTEL_* settings
    install(provider)


def new_provider():
    """A TracerProvider with our resource and ids (span processors are the caller's)."""
    # Imported here: only a process that traces loads the SDK.
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator  # noqa: PLC0415

    class _Ids(RandomIdGenerator):
        """Random ids, except the span id a builder asks for (invoke_agent's, derived from the turn id)."""

        def generate_span_id(self) -> int:
            forced = _forced_span_id.get()
            return forced if forced is not None else super().generate_span_id()

    resource = Resource.create({"service.name": settings.OTEL_SERVICE_NAME})
    return TracerProvider(resource=resource, id_generator=_Ids())


def install(provider) -> None:
    """Trace with `provider` (from `new_provider()`) from now on; the flusher thread builds ended turns' spans."""
    global ON, _tracer
    _tracer = provider.get_tracer("everruns")
    ON = True
    counters.after_flush(build_ended)


def capture_content() -> bool:
    return settings.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT


# --- the web side ---------------------------------------------------------------------------------
def request_started(method: str, path: str, headers: dict):
    """A server span for a request (ON only), continuing the caller's `traceparent` (`headers`: the ASGI
    scope's, bytes to bytes), current in this context until `request_finished`."""
    from opentelemetry import context, trace  # noqa: PLC0415 (loaded only when tracing is on)
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    names = ("traceparent", "tracestate")
    carrier = {name: headers[name.encode()].decode("latin-1") for name in names if name.encode() in headers}
    parent = TraceContextTextMapPropagator().extract(carrier)
    span = _tracer.start_span(method, context=parent, kind=trace.SpanKind.SERVER)
    span.set_attribute("http.request.method", method)
    span.set_attribute("url.path", path)
    token = context.attach(trace.set_span_in_context(span))
    return span, token


def request_finished(started, *, route: str, status: int) -> None:
    from opentelemetry import context  # noqa: PLC0415 (loaded only when tracing is on)
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

    span, token = started
    context.detach(token)
    span.update_name(f"{span.attributes.get('http.request.method')} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def trace_context() -> dict | None:
    """The current span's context as W3C headers, to store with a turn (None when tracing is off)."""
    if not ON:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    carrier: dict = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier or None


# --- a turn ended -----------------------------------------------------------------------------------
def turn_ended(turn_id) -> None:
    """From the event log, inside the transaction that ends the turn: its spans are built after commit."""
    transaction.on_commit(lambda: _mark_ended(turn_id))


def _mark_ended(turn_id) -> None:
    with _ended_lock:
        _ended.append(turn_id)


def build_ended() -> None:
    """On the flusher thread: the spans of the turns that ended since the last call."""
    with _ended_lock:
        ended = list(_ended)
        _ended.clear()
    if not ended:
        return
    close_old_connections()
    for turn_id in ended:
        try:
            build_turn(turn_id)
        except Exception:
            logger.warning("telemetry: the trace of turn %s was not built", turn_id, exc_info=True)


def turn_span_id(turn_id) -> int:
    """invoke_agent's span id, the same wherever and however often the turn's spans are built."""
    digest = hashlib.sha256(uuid.UUID(str(turn_id)).bytes).digest()
    return int.from_bytes(digest[:8], "big") or 1


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _provider_of(model: str) -> str:
    found = (
        apps.get_model("agents", "LlmModel")
        .objects.filter(model_id=model)
        .values_list("provider__provider_type", flat=True)
        .first()
    )
    if found:
        return "openai" if found == "openai_compatible" else found
    return model.split("/", 1)[0] if "/" in model else "unknown"


def build_turn(turn_id) -> None:
    """The turn's invoke_agent span and its children, from the Turn row and its events (and, with the opt-in,
    its messages' text)."""
    Turn, Event, Message = (apps.get_model("agent_sessions", name) for name in ("Turn", "Event", "Message"))
    turn = (
        Turn.objects.filter(pk=turn_id)
        .values(
            "status",
            "created_at",
            "finished_at",
            "trace_context",
            "error",
            "cancel_reason",
            "iterations",
            "input_tokens",
            "output_tokens",
            "session_id",
            "session__agent_id",
            "session__agent__name",
        )
        .first()
    )
    if turn is None or turn["finished_at"] is None:
        return
    events = list(
        Event.objects.filter(session_id=turn["session_id"], turn_id=turn_id)
        .order_by("sequence")
        .values("type", "data", "created_at")
    )
    messages = None
    if capture_content():
        messages = list(
            Message.objects.filter(session_id=turn["session_id"])
            .order_by("sequence")
            .values("role", "content", "metadata", "turn_id")
        )
    emit_turn(turn_id, turn, events, messages)


def emit_turn(turn_id, turn: dict, events: list[dict], messages: list[dict] | None, provider_of=None) -> None:
    """The spans of one ended turn. `turn`: the row's fields (see build_turn); `events`: its log; `messages`:
    the session's messages when content is captured, else None; `provider_of(model)`: the provider's name (a
    database read by default). Unit tests call it with rows of their own."""
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415 (loaded only when tracing is on)

    root = _turn_span(turn_id, turn)
    outputs = _responses(turn_id, messages) if messages is not None else None
    spans = _TurnSpans(root, provider_of or _provider_of, outputs)
    for event in events:
        spans.add(event["type"], event["data"] or {}, event["created_at"])
    if spans.open_call is not None:  # the turn ended during the call
        spans.abandoned(turn["finished_at"])
    if turn["status"] == "failed":
        error = turn.get("error") or {}
        root.set_attribute("error.type", str(error.get("code") or "error"))
        root.set_status(Status(StatusCode.ERROR, str(error.get("message") or "")))
    root.end(end_time=_ns(turn["finished_at"]))


def _turn_span(turn_id, turn: dict):
    """The turn's `invoke_agent` span, under the trace context the POST that queued it stored, with the span id
    every process derives from the turn's id."""
    from opentelemetry import trace  # noqa: PLC0415 (loaded only when tracing is on)
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    parent = TraceContextTextMapPropagator().extract(turn.get("trace_context") or {})
    agent = turn.get("session__agent__name") or "agent"
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent,
        "gen_ai.agent.id": str(turn.get("session__agent_id")),
        "gen_ai.conversation.id": str(turn["session_id"]),
        "gen_ai.usage.input_tokens": int(turn.get("input_tokens") or 0),
        "gen_ai.usage.output_tokens": int(turn.get("output_tokens") or 0),
        "everruns.turn.id": str(turn_id),
        "everruns.turn.status": turn["status"],
        "everruns.turn.iterations": int(turn.get("iterations") or 0),
    }
    token = _forced_span_id.set(turn_span_id(turn_id))
    try:
        return _tracer.start_span(
            f"invoke_agent {agent}",
            context=parent,
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(turn["created_at"]),
        )
    finally:
        _forced_span_id.reset(token)


class _TurnSpans:
    """The `chat` and `execute_tool` spans under a turn's span, and its span events, from the turn's log in order."""

    def __init__(self, root, provider_of, outputs: list | None):
        from opentelemetry import trace  # noqa: PLC0415 (loaded only when tracing is on)

        self.root, self.under = root, trace.set_span_in_context(root)
        self.provider_of, self.providers = provider_of, {}
        self.outputs, self.response_index = outputs, 0
        self.tool_starts = {}
        # A turn's LLM calls are one after the other: a call started (llm.started) and not completed when the
        # next one starts, or when the turn ends, was never stored (its worker died, an interrupt, a cancel).
        self.open_call: tuple | None = None  # (started at, model, retries)

    def add(self, kind: str, data: dict, at) -> None:
        if kind == "llm.started":
            if self.open_call is not None:
                self.abandoned(at)
            self.open_call = (at, data.get("model") or "", [])
        elif kind == "llm.completed":
            self._chat(data, at)
        elif kind == "llm.retrying" and self.open_call is not None:
            error = data.get("error") or {}
            retry = {"attempt": int(data.get("attempt") or 0), "error.type": str(error.get("code") or "")}
            self.open_call[2].append((_ns(at), retry))
        elif kind == "tool.started":
            self.tool_starts[data.get("tool_call_id")] = at
        elif kind == "tool.completed":
            self._tool(data, at)
        if kind in SPAN_EVENTS:
            self.root.add_event(SPAN_EVENTS[kind], _event_attributes(kind, data), timestamp=_ns(at))
        elif kind == "context.compacted":  # runner/compaction: the sizes, never the summary's text
            sizes = ("tokens_before", "tokens_after", "through_sequence")
            attributes = {k: data[k] for k in sizes if isinstance(data.get(k), int)}
            self.root.add_event("everruns.context.compacted", attributes, timestamp=_ns(at))

    def abandoned(self, at) -> None:
        _abandoned_chat(self.under, self.open_call, at)
        self.open_call = None

    def _chat(self, data: dict, at) -> None:
        from opentelemetry import trace  # noqa: PLC0415 (loaded only when tracing is on)

        model = data.get("model") or ""
        # From llm.started: the span covers the call's retried attempts too (each a gen_ai.retry event).
        if self.open_call is not None:
            start_ns, retries = _ns(self.open_call[0]), self.open_call[2]
        else:
            start_ns, retries = _ns(at) - int(data.get("duration_ms") or 0) * 1_000_000, []
        self.open_call = None
        usage = data.get("usage") or {}
        provider = self.providers.get(model) or self.providers.setdefault(model, self.provider_of(model))
        span = _tracer.start_span(
            f"chat {model}",
            context=self.under,
            kind=trace.SpanKind.CLIENT,
            start_time=start_ns,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": int(usage.get("input_tokens") or 0),
                "gen_ai.usage.output_tokens": int(usage.get("output_tokens") or 0),
                "gen_ai.response.finish_reasons": [str(data.get("finish_reason") or "unknown")],
            },
        )
        if data.get("unstored_calls"):
            span.set_attribute("everruns.unstored_calls", int(data["unstored_calls"]))
        if self.outputs is not None and self.response_index < len(self.outputs):
            prompt, completion = self.outputs[self.response_index]
            span.set_attribute("gen_ai.input.messages", json.dumps(prompt, default=str))
            span.set_attribute("gen_ai.output.messages", json.dumps(completion, default=str))
        self.response_index += 1
        for timestamp, attributes in retries:
            span.add_event("gen_ai.retry", attributes, timestamp=timestamp)
        span.end(end_time=_ns(at))

    def _tool(self, data: dict, at) -> None:
        from opentelemetry import trace  # noqa: PLC0415 (loaded only when tracing is on)
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        name, call_id = data.get("name") or "", data.get("tool_call_id") or ""
        started = self.tool_starts.pop(call_id, None)
        start_ns = _ns(started) if started else _ns(at) - int(data.get("duration_ms") or 0) * 1_000_000
        span = _tracer.start_span(
            f"execute_tool {name}",
            context=self.under,
            kind=trace.SpanKind.INTERNAL,
            start_time=start_ns,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": call_id,
                "gen_ai.tool.type": "function",
            },
        )
        if data.get("status") == "error":
            span.set_attribute("error.type", "tool_error")
            span.set_status(Status(StatusCode.ERROR))
        if capture_content():
            span.set_attribute("gen_ai.tool.call.result", json.dumps(data.get("result"), default=str))
        span.end(end_time=_ns(at))


def _event_attributes(kind: str, data: dict) -> dict:
    if kind.startswith("tool.approval"):
        attributes = {"gen_ai.tool.call.id": str(data.get("tool_call_id") or "")}
        if "approved" in data:
            attributes["everruns.approved"] = bool(data.get("approved"))
        if data.get("name"):
            attributes["gen_ai.tool.name"] = str(data["name"])
        return attributes
    if kind == "turn.failed":
        error = data.get("error") or data
        return {"error.type": str(error.get("code") or "")}
    return {}


def _abandoned_chat(under, call: tuple, ended: datetime) -> None:
    """A call that a worker started and never stored (it died, an interrupt or a cancel came during the call)."""
    from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: PLC0415 (loaded only when tracing is on)

    started, model, retries = call
    span = _tracer.start_span(
        f"chat {model}".strip(),
        context=under,
        kind=SpanKind.CLIENT,
        start_time=_ns(started),
        attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model, "error.type": "abandoned"},
    )
    for timestamp, attributes in retries:
        span.add_event("gen_ai.retry", attributes, timestamp=timestamp)
    span.set_status(Status(StatusCode.ERROR, "the call's response was never stored"))
    span.end(end_time=max(_ns(ended), _ns(started)))


def _responses(turn_id, messages: list[dict]) -> list[tuple[list, list]]:
    """(input, output) of each stored LLM response of the turn, in order: the messages the call was given that
    are new since the previous response (the user's message, tool results), and the response."""
    out, fresh = [], []
    for message in messages:
        meta = message.get("metadata") or {}
        if message["role"] == "assistant" and str(message.get("turn_id")) == str(turn_id):
            if meta.get("interrupted") or meta.get("cancelled"):
                fresh = []
                continue
            out.append((fresh, [{"role": "assistant", "parts": message["content"]}]))
            fresh = []
        else:
            fresh.append({"role": message["role"], "parts": message["content"]})
    return out


@contextlib.contextmanager
def installed(provider):
    """Tracing on with `provider` for the duration of the block (unit tests)."""
    global ON, _tracer
    saved = ON, _tracer
    _tracer, ON = provider.get_tracer("everruns"), True
    try:
        yield provider
    finally:
        ON, _tracer = saved
