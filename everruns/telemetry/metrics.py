"""`GET /metrics`: Prometheus text. Turns by status are read from the database (the truth, whichever
process wrote them); the other counters from the shared store every process flushes to (counters.py)."""

import hmac
from collections import defaultdict

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from everruns.api.auth import Denied
from everruns.api.keys import api_key_check
from everruns.models import ApiKey
from everruns.telemetry import counters
from sessions.models import Turn

ENDED = (Turn.Status.COMPLETED, Turn.Status.FAILED, Turn.Status.CANCELLED)
COUNTERS = {
    "everruns_llm_calls_total": ("LLM calls (attempts), by model and outcome (ok, error)", ("model", "outcome")),
    "everruns_llm_tokens_total": ("LLM tokens, by model and kind (input, output)", ("model", "kind")),
    "everruns_tool_calls_total": ("Tool calls, by tool and status (success, error)", ("tool", "status")),
    "everruns_http_requests_total": (
        "HTTP responses, by route template, method and status",
        ("route", "method", "status"),
    ),
}
HISTOGRAM = "everruns_llm_call_duration_seconds"


def _check(request) -> None:
    """Open in `none` mode; in `api_key` mode the METRICS_TOKEN bearer or an admin key."""
    if settings.AUTH_MODE == "none":
        return
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Denied(
            401, "unauthenticated", "Authentication required: Authorization: Bearer <admin key or METRICS_TOKEN>"
        )
    if settings.METRICS_TOKEN and hmac.compare_digest(secret.encode(), settings.METRICS_TOKEN.encode()):
        return
    key = api_key_check(secret)
    if key is None:
        raise Denied(401, "unauthenticated", "Invalid, revoked or expired API key")
    if key.scope != ApiKey.Scope.ADMIN:
        raise Denied(403, "forbidden", "Metrics need an admin key or METRICS_TOKEN")


class _Collector:
    def collect(self):
        by_status = dict(Turn.objects.values_list("status").annotate(n=Count("id")).order_by())
        total = CounterMetricFamily("everruns_turns", "Turns that ended, by status", labels=["status"])
        for status in ENDED:
            total.add_metric([status.value], by_status.get(status.value, 0))
        yield total
        active = GaugeMetricFamily("everruns_turns_active", "Turns not ended, by state", labels=["state"])
        for state in (Turn.Status.RUNNING, Turn.Status.QUEUED, Turn.Status.WAITING):
            active.add_metric([state.value], by_status.get(state.value, 0))
        yield active
        counters.flush()  # this process's own counts are in what it answers
        values = counters.read()
        for name, (help_text, labels) in COUNTERS.items():
            family = CounterMetricFamily(name.removesuffix("_total"), help_text, labels=list(labels))
            for (metric, pairs), value in sorted(values.items()):
                if metric == name:
                    found = dict(pairs)
                    family.add_metric([found.get(label, "") for label in labels], value)
            yield family
        yield _histogram(values)
        yield GaugeMetricFamily(
            "everruns_stream_clients",
            "Open event streams, over all web processes",
            value=counters.read_gauge("stream_clients"),
        )


def _histogram(values: dict) -> HistogramMetricFamily:
    family = HistogramMetricFamily(HISTOGRAM, "LLM call duration (stored responses)", labels=["model"])
    buckets: dict[str, dict[str, float]] = defaultdict(dict)
    sums: dict[str, float] = {}
    for (metric, pairs), value in values.items():
        found = dict(pairs)
        if metric == f"{HISTOGRAM}_bucket":
            buckets[found.get("model", "")][found["le"]] = value
        elif metric == f"{HISTOGRAM}_sum":
            sums[found.get("model", "")] = value
    for model in sorted(buckets):
        cumulative, running = [], 0.0
        for bound in (*(str(b) for b in counters.DURATION_BUCKETS), "+Inf"):
            running += buckets[model].get(bound, 0)
            cumulative.append((bound, running))
        family.add_metric([model], cumulative, sums.get(model, 0.0))
    return family


def metrics_view(request):
    try:
        _check(request)
    except Denied as denied:
        return denied.response()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
