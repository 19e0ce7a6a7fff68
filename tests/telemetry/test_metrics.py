"""GET /metrics: counts from every process (a web and a worker process count into one store), by the
contract's names and labels; and who may read it in api_key mode."""

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from everruns.api.keys import api_key_create
from sessions.models import Event, Session
from tests.conftest import wait_for
from tests.e2e.client import open_session, watch_turn
from tests.e2e.sse import Stream
from tests.factories import make_model

MESSAGES_ROUTE = "v1/agents/<uuid:agent_id>/sessions/<uuid:session_id>/messages"


def parse(text: str) -> dict:
    """{(sample name, frozenset of labels): value}"""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str) -> dict:
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.e2e
def test_a_tool_turn_counts_across_the_web_and_the_worker_process(stack):
    # The worker is the suite's: a turn of an earlier test still running on it counts too. The LLM figures are
    # this test's alone (a model of its own, by label); the others may only have risen more.
    own = make_model(model_id="llmsim-metrics")
    before = scrape(stack)
    session_url = open_session(stack, agent={"capabilities": ["test_math"], "default_model_id": str(own.pk)})
    watch_turn(session_url, "What is 7 + 8?")
    session = Session.objects.get(pk=session_url.rsplit("/", 1)[1])
    completed = [e.data for e in Event.objects.filter(session=session, type="llm.completed")]
    (model,) = {data["model"] for data in completed}
    assert len(completed) == 2

    def risen(name, **labels):
        return value(now, name, **labels) - value(before, name, **labels)

    def llm_calls_counted():  # the worker flushes its counts about once a second
        nonlocal now
        now = scrape(stack)
        return risen("everruns_llm_calls_total", model=model, outcome="ok") == 2

    now = {}
    wait_for(llm_calls_counted, 10, interval=0.3, message="the worker's LLM calls in /metrics")
    for kind in ("input", "output"):
        expected = sum(data["usage"][f"{kind}_tokens"] for data in completed)
        assert risen("everruns_llm_tokens_total", model=model, kind=kind) == expected
    assert risen("everruns_llm_call_duration_seconds_count", model=model) == 2
    assert risen("everruns_llm_call_duration_seconds_bucket", model=model, le="+Inf") == 2
    assert risen("everruns_tool_calls_total", tool="add", status="success") >= 1
    assert risen("everruns_turns_total", status="completed") >= 1
    assert risen("everruns_http_requests_total", route=MESSAGES_ROUTE, method="POST", status="201") >= 1
    assert risen("everruns_http_requests_total", route="v1/agents", method="POST", status="201") >= 1
    # Routes are templates: no raw id appears in any label.
    assert not any(str(session.pk) in label for _, labels in now for _, label in labels)


@pytest.mark.e2e
def test_open_event_streams_are_counted_while_open(stack):
    session_url = open_session(stack)
    baseline = value(scrape(stack), "everruns_stream_clients")
    stream = Stream(f"{session_url}/events")
    try:
        wait_for(
            lambda: value(scrape(stack), "everruns_stream_clients") == baseline + 1, 10, 0.3, message="a stream counted"
        )
    finally:
        stream.close()
    wait_for(lambda: value(scrape(stack), "everruns_stream_clients") == baseline, 10, 0.3, message="stream gone")
    counted = scrape(stack)
    route = "v1/agents/<uuid:agent_id>/sessions/<uuid:session_id>/events"
    assert value(counted, "everruns_http_requests_total", route=route, method="GET", status="200") >= 1


@pytest.fixture
def api_key_mode(settings, seeded):
    settings.AUTH_MODE = "api_key"
    settings.METRICS_TOKEN = "metrics-scraper-token-0123456789"


def _get(authorization: str | None):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.get("/metrics")


def test_metrics_need_an_admin_key_or_the_metrics_token_in_api_key_mode(api_key_mode):
    _, admin = api_key_create(name="root", scope="admin")
    _, agents = api_key_create(name="app", scope="agents")
    missing = _get(None)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthenticated"
    assert _get("Bearer not-a-key").status_code == 401
    forbidden = _get(f"Bearer {agents}")
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    for allowed in (f"Bearer {admin}", "Bearer metrics-scraper-token-0123456789"):
        response = _get(allowed)
        assert response.status_code == 200
        assert "everruns_turns_active" in response.content.decode()


def test_metrics_are_open_in_none_mode(seeded, settings):
    settings.AUTH_MODE = "none"
    response = _get(None)
    assert response.status_code == 200
    samples = parse(response.content.decode())
    for state in ("running", "queued", "waiting"):
        assert ("everruns_turns_active", frozenset({("state", state)})) in samples
