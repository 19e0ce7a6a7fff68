"""The production shape, live: uvicorn + a Celery worker process on PostgreSQL and Redis."""

import contextlib
import io
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests
from django.db import connection

from sessions.models import Turn
from tests import processes
from tests.conftest import wait_for
from tests.e2e import refclient
from tests.e2e.client import open_session, say, watch_turn
from tests.e2e.sse import Stream, turn_done
from tests.factories import make_model

pytestmark = [pytest.mark.e2e]


def _turns_ended(url: str) -> bool:
    """Every started turn has ended (a turn may start and end between two polls)."""
    types = [e["type"] for e in requests.get(f"{url}/events?limit=500", timeout=5).json()["items"]]
    started = types.count("turn.started")
    return started > 0 and types.count("turn.completed") + types.count("turn.failed") >= started


def wait_pending(url: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        session = requests.get(url, timeout=5).json()
        if not seen or seen[-1] != session["status"]:
            seen.append(session["status"])
        if session["status"] in ("pending", "failed") and (len(seen) > 1 or _turns_ended(url)):
            return session
        time.sleep(0.1)
    raise AssertionError(f"session never settled: {seen}")


def test_reference_client_runs_unmodified_but_for_its_address(stack):
    source = refclient.DEFAULT.read_text().replace('BASE_URL = "http://localhost:9000"', f'BASE_URL = "{stack}"')
    assert f'BASE_URL = "{stack}"' in source
    out = io.StringIO()
    namespace = {"__name__": "__refclient__"}
    with contextlib.redirect_stdout(out):
        for i, cell in enumerate(refclient.code_cells(source)):
            exec(compile(cell, f"cell {i + 1}", "exec"), namespace)
    printed = out.getvalue()
    assert "2 + 2 = 4" in printed and "3 + 3 = 6" in printed
    assert "Session status: running" in printed and "Session status: pending" in printed
    for event in (
        "message.user",
        "turn.started",
        "llm.started",
        "message.delta",
        "llm.completed",
        "message.assistant",
        "turn.completed",
        "session.status",
    ):
        assert f"Event: {event}" in printed, event
    assert "deleted." in printed and "archived." in printed


def test_live_events_status_flow_and_messages(stack):
    path = open_session(stack)
    stream = Stream(f"{path}/events")
    try:
        response = say(path, "What is 5 * 6?")
        assert response.status_code == 201
        assert requests.get(path).json()["status"] == "running"  # never a stale pending
        stream.read_until(turn_done)
    finally:
        stream.close()
    types = [e["event"] for e in stream.events]
    stored = [e["event"] for e in stream.stored()]
    assert stored == [
        "message.user",
        "session.status",
        "turn.started",
        "llm.started",
        "llm.completed",
        "message.assistant",
        "turn.completed",
        "session.status",
    ]
    deltas = [i for i, t in enumerate(types) if t == "message.delta"]
    assert len(deltas) >= 2 and max(deltas) < types.index("message.assistant")
    text = "".join(e["data"]["data"]["delta"] for e in stream.events if e["event"] == "message.delta")
    messages = requests.get(f"{path}/messages").json()
    assert [m["role"] for m in messages["items"]] == ["user", "assistant"]
    assert messages["items"][1]["content"][0]["text"] == text and "5 * 6 = 30" in text
    assert [e["id"] for e in stream.stored()] == [str(i) for i in range(1, 9)]
    log = requests.get(f"{path}/events").json()
    assert [e["type"] for e in log["items"]] == stored


def test_sse_resume_after_a_dropped_stream_gets_exactly_the_missing_events(stack):
    slow = make_model(model_id="llmsim-slow", settings={"latency_ms": 300, "tokens_per_second": 20})
    path = open_session(stack, session={"model_id": str(slow.pk)})
    first = Stream(f"{path}/events")
    say(path, "Tell me a story")
    first.read_until(lambda e: e["event"] == "llm.started")
    first.close()  # dropped mid-turn
    seen = first.stored()
    cursor = seen[-1]["id"]
    time.sleep(1.0)  # events happen while nobody listens
    second = Stream(f"{path}/events", last_event_id=cursor)
    try:
        second.read_until(turn_done)
    finally:
        second.close()
    resumed = second.stored()
    sequences = [e["data"]["sequence"] for e in seen + resumed]
    assert sequences == list(range(1, len(sequences) + 1)), sequences
    log = requests.get(f"{path}/events").json()["items"]
    assert [e["sequence"] for e in log] == sequences
    assert resumed[0]["data"]["sequence"] == int(cursor) + 1
    # ?lastEventId= works the same, and a cursor at the end replays nothing
    third = Stream(f"{path}/events?lastEventId={sequences[-3]}")
    try:
        third.read_until(lambda e: e["data"].get("sequence") == sequences[-1])
    finally:
        third.close()
    assert [e["data"]["sequence"] for e in third.stored()] == sequences[-2:]


def test_failing_model_over_http_then_recovery(stack):
    broken = make_model(model_id="error")
    path = open_session(stack)
    say(path, "hi", controls={"model_id": str(broken.pk)})
    failed = wait_pending(path)
    assert failed["status"] == "failed" and failed["error"]["code"] == "llm_provider_error"
    say(path, "hi again")
    recovered = wait_pending(path)
    assert recovered["status"] == "pending" and recovered["error"] is None
    roles = [m["role"] for m in requests.get(f"{path}/messages").json()["items"]]
    assert roles == ["user", "user", "assistant"]


def test_idle_stream_sends_keepalives_and_open_streams_hold_no_database_connection(stack):

    url = f"{open_session(stack)}/events"
    name = connection.settings_dict["NAME"]

    def backends() -> int:
        with psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres") as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name])
            return cur.fetchone()[0]

    before = backends()
    streams = [
        requests.get(url, stream=True, headers={"Accept": "text/event-stream"}, timeout=(5, 10)) for _ in range(20)
    ]
    try:
        started = time.monotonic()
        received = b""
        for chunk in streams[0].iter_content(chunk_size=None):
            received += chunk
            if b": keep-alive" in received:
                break
        assert time.monotonic() - started < 6  # SSE_KEEPALIVE_SECONDS=2 for the test web process
        assert backends() <= before + 2, "open streams must not each hold a PostgreSQL connection"
    finally:
        for s in streams:
            s.close()


def test_tool_turn_live_over_sse_and_in_messages(stack):
    path = open_session(stack, agent={"capabilities": ["test_math"]})
    stream = watch_turn(path, "What is 7 + 8?")
    stored = [e["event"] for e in stream.stored()]
    assert stored == [
        "message.user",
        "session.status",
        "turn.started",
        "llm.started",
        "llm.completed",
        "message.assistant",
        "tool.started",
        "message.tool_result",
        "tool.completed",
        "llm.started",
        "llm.completed",
        "message.assistant",
        "turn.completed",
        "session.status",
    ]
    tool_done = next(e for e in stream.events if e["event"] == "tool.completed")["data"]["data"]
    assert tool_done["name"] == "add" and tool_done["status"] == "success" and tool_done["result"] == {"result": 15}
    items = requests.get(f"{path}/messages").json()["items"]
    assert [m["role"] for m in items] == ["user", "assistant", "tool_result", "assistant"]
    assert items[1]["content"][0] == {
        **items[1]["content"][0],
        "type": "tool_call",
        "name": "add",
        "arguments": {"a": 7, "b": 8},
    }
    assert items[2]["content"][0]["result"] == {"result": 15}
    assert "7 + 8 = 15" in items[3]["content"][0]["text"]


def test_a_model_added_through_the_api_runs_a_turn(stack, fake_llm):
    key = "sk-e2e-provider-1a2b3c"
    provider = requests.post(
        f"{stack}/v1/llm-providers",
        json={"name": "fake", "provider_type": "openai_compatible", "base_url": fake_llm.base_url, "api_key": key},
    ).json()
    assert provider["api_key_set"] is True
    model = requests.post(f"{stack}/v1/llm-providers/{provider['id']}/models", json={"model_id": "gpt-4o-mini"}).json()
    fake_llm.reply(
        {
            "text": "Hello from the fake server, streamed word by word.",
            "token_delay": 0.02,
            "usage": {"prompt_tokens": 30, "completion_tokens": 11},
        }
    )
    path = open_session(stack, agent={"default_model_id": model["id"]})
    stream = watch_turn(path, "hi")
    types = [e["event"] for e in stream.events]
    deltas = [i for i, t in enumerate(types) if t == "message.delta"]
    assert len(deltas) >= 5 and max(deltas) < types.index("message.assistant")
    assert fake_llm.headers[-1]["authorization"] == f"Bearer {key}"
    done = requests.get(path).json()
    assert done["status"] == "pending"
    assert done["usage"]["input_tokens"] == 30 and done["usage"]["output_tokens"] == 11
    assert done["usage"]["cost_usd"] > 0
    assert requests.get(f"{path}/messages").json()["items"][-1]["metadata"]["model"] == "gpt-4o-mini"


def test_concurrent_posts_with_one_idempotency_key_store_one_message_and_one_turn(stack):

    path = open_session(stack)
    body = {"message": {"content": [{"type": "text", "text": "only once"}]}}

    def post(_):
        return requests.post(f"{path}/messages", json=body, headers={"Idempotency-Key": "same-key"})

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(post, range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    wait_pending(path)
    items = requests.get(f"{path}/messages").json()["items"]
    assert [m["role"] for m in items] == ["user", "assistant"]
    events = [e["type"] for e in requests.get(f"{path}/events").json()["items"]]
    assert events.count("turn.started") == 1 and events.count("message.user") == 1


def test_a_message_posted_while_the_broker_is_down_is_stored_and_the_sweeper_queues_its_turn(
    seeded_tx, worker, log_dir
):
    """The web process's Redis (its broker) is a port where nothing listens; the worker's is the real one.
    (REDIS_URL, not CELERY_BROKER_URL: the processes load tests.settings, which drops the latter.)"""
    dead_broker = f"redis://127.0.0.1:{processes.free_port()}/0"
    web, base = processes.start_web(log_dir, REDIS_URL=dead_broker, TURN_QUEUED_GRACE_SECONDS=3)
    try:
        path = open_session(base)
        response = say(path, "What is 2 + 2?")
        assert response.status_code == 201, response.text
        turn = Turn.objects.get(session_id=path.rsplit("/", 1)[1])
        # Stored and answered at once, though no worker was told: the session runs until the sweeper (which
        # may already have) queues the turn again.
        assert turn.input_message_ids and requests.get(path).json()["status"] in ("running", "pending")
        wait_for(lambda: f"could not queue turn {turn.pk}" in web.output(), 10, message="the failed publish logged")
        settled = wait_for(
            lambda: (s := requests.get(path).json())["status"] != "running" and s, 60, message="turn done"
        )
        items = requests.get(f"{path}/messages").json()["items"]
    finally:
        web.stop()
    assert settled["status"] == "pending" and settled["error"] is None
    assert f"re-queuing stuck turn {turn.pk}" in worker.output()
    assert [m["role"] for m in items] == ["user", "assistant"] and "2 + 2 = 4" in items[1]["content"][0]["text"]


def test_a_stream_that_reaches_django_is_refused_not_left_holding_a_web_thread(stack):
    """`?format=` given twice: Django reads the last value. Whatever the router decides, no request may hold one of
    the WEB_THREADS threads for ever (they also serve every stream's reads)."""
    session_url = open_session(stack)
    for _ in range(12):  # more than WEB_THREADS (8)
        response = requests.get(f"{session_url}/events?format=json&format=event-stream", timeout=5, stream=True)
        assert response.status_code in (200, 406)
        response.close()
    assert requests.get(session_url, timeout=5).status_code == 200
