"""Observability: Prometheus metrics counted by every process (counters.py, read by metrics.py at
`GET /metrics`) and OpenTelemetry traces (tracing.py). The hooks below are what the rest of the code calls;
each costs a dict update (metrics) and a flag check (traces) when tracing is off.

Counts come from the durable log where it has them: an event appended (sessions/log.py) counts LLM calls,
tokens and tool calls once committed, whichever worker wrote it; a failed LLM attempt is counted by the
runner (the log has no event for it). Turns by status are read from the database by /metrics.
"""

from django.db import transaction

from everruns.telemetry import counters, tracing

COUNTED_EVENTS = {"llm.completed", "tool.completed"}


def event_appended(*, type: str, data: dict, turn_id) -> None:
    """sessions/log.py, inside the transaction that appends the event."""
    if type in COUNTED_EVENTS:
        transaction.on_commit(lambda: _count_event(type, data))
    if tracing.ON and type in tracing.TURN_END_EVENTS:
        tracing.turn_ended(turn_id)


def _count_event(type: str, data: dict) -> None:
    if type == "llm.completed":
        model = str(data.get("model") or "")
        usage = data.get("usage") or {}
        counters.add("everruns_llm_calls_total", (("model", model), ("outcome", "ok")))
        counters.observe(
            "everruns_llm_call_duration_seconds", (("model", model),), (data.get("duration_ms") or 0) / 1000
        )
        for kind in ("input", "output"):
            counters.add(
                "everruns_llm_tokens_total", (("model", model), ("kind", kind)), int(usage.get(f"{kind}_tokens") or 0)
            )
    elif type == "tool.completed":
        counters.add(
            "everruns_tool_calls_total", (("tool", str(data.get("name") or "")), ("status", str(data.get("status"))))
        )


def llm_attempt_failed(*, model: str) -> None:
    """runner/loop.py: an LLM attempt failed (retried or not)."""
    counters.add("everruns_llm_calls_total", (("model", model), ("outcome", "error")))


def http_request(*, route: str, method: str, status: int) -> None:
    """The web front, for every response: Django's (everruns/front/bridge.py) and the routes served before it."""
    counters.add("everruns_http_requests_total", (("route", route), ("method", method), ("status", str(status))))
