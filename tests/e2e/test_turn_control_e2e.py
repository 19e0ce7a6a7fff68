"""Turn control through the real processes (uvicorn + Celery worker on PostgreSQL and Redis), driven over
HTTP and watched on the SSE stream: cancel, interrupt, and an approval that outlives its worker."""

import time

import pytest
import requests
from django.conf import settings

from tests import processes
from tests.conftest import wait_for
from tests.e2e.client import open_session, say
from tests.e2e.sse import Stream, turn_done

pytestmark = [pytest.mark.e2e]

STORY = "Tell me a long story about a lighthouse keeper, a storm, a ship and a cat named Pepper."


def slow_model(base: str, tokens_per_second: float) -> str:
    """An llmsim model that streams `tokens_per_second` words a second, added through the API; returns its id."""
    provider = requests.post(
        f"{base}/v1/llm-providers",
        json={"name": "slow llmsim", "provider_type": "llmsim", "settings": {"tokens_per_second": tokens_per_second}},
    )
    assert provider.status_code == 201, provider.text
    model = requests.post(f"{base}/v1/llm-providers/{provider.json()['id']}/models", json={"model_id": "llmsim-slow"})
    assert model.status_code == 201, model.text
    return model.json()["id"]


def of_type(stream: Stream, type_: str) -> list[dict]:
    """The Event JSON of each `type_` event the stream saw."""
    return [e["data"] for e in stream.events if e["event"] == type_]


def read_deltas(stream: Stream, count: int) -> None:
    """Read until the stream has seen `count` streamed tokens."""
    stream.read_until(lambda _: len(of_type(stream, "message.delta")) >= count)


def cancel_while_streaming(base: str) -> tuple[str, Stream, requests.Response, float]:
    """Post a long question on a slow model, cancel over HTTP once a few tokens streamed, read to the end.
    Returns (session URL, the stream, the cancel's response, its duration in seconds)."""
    path = open_session(base, session={"model_id": slow_model(base, tokens_per_second=5)})
    stream = Stream(f"{path}/events", timeout=30)
    try:
        assert say(path, STORY).status_code == 201
        read_deltas(stream, 3)
        started = time.monotonic()
        response = requests.post(f"{path}/cancel", json={"reason": "enough"}, timeout=10)
        elapsed = time.monotonic() - started
        stream.read_until(turn_done)
    finally:
        stream.close()
    return path, stream, response, elapsed


def test_cancel_over_http_stops_a_streaming_turn_live(stack):
    path, stream, response, elapsed = cancel_while_streaming(stack)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    assert elapsed < 2.5, f"the cancel took {elapsed:.2f} s"
    types = [e["event"] for e in stream.events]
    assert types.count("message.delta") >= 3
    assert types[types.index("message.assistant") :] == ["message.assistant", "turn.cancelled", "session.status"]
    assert "llm.completed" not in types and "turn.completed" not in types
    partial = of_type(stream, "message.assistant")[0]["data"]["message"]
    assert partial["metadata"]["cancelled"] is True
    streamed = "".join(d["data"]["delta"] for d in of_type(stream, "message.delta"))
    assert partial["content"] == [{"type": "text", "text": streamed}]
    assert of_type(stream, "turn.cancelled")[0]["data"] == {"reason": "enough"}
    assert of_type(stream, "session.status")[-1]["data"] == {"status": "pending", "previous": "running", "error": None}
    sequences = [e["data"]["sequence"] for e in stream.stored()]
    assert sequences == list(range(1, len(sequences) + 1))
    # Nothing more happens to the session, and it takes the next message as usual.
    time.sleep(1)
    log = requests.get(f"{path}/events").json()["items"]
    assert [e["sequence"] for e in log] == sequences
    assert requests.post(f"{path}/cancel").status_code == 409
    items = requests.get(f"{path}/messages").json()["items"]
    assert [m["role"] for m in items] == ["user", "assistant"]


def test_the_cancelled_partial_message_has_the_id_its_deltas_streamed_under(stack):
    """A client builds the streaming answer from `message.delta {message_id}` and replaces it with the
    stored message of that id (as for a completed or an interrupted call); a cancelled call's text must
    not arrive as a second message."""
    _, stream, response, _ = cancel_while_streaming(stack)
    assert response.status_code == 202
    streamed_ids = {d["data"]["message_id"] for d in of_type(stream, "message.delta")}
    partial = of_type(stream, "message.assistant")[0]["data"]["message"]
    assert streamed_ids == {partial["id"]}


def test_interrupt_over_http_answers_the_new_message(stack):
    path = open_session(stack, session={"model_id": slow_model(stack, tokens_per_second=10)})
    stream = Stream(f"{path}/events", timeout=40)
    try:
        assert say(path, STORY).status_code == 201
        read_deltas(stream, 3)
        interrupting = say(path, "What is 2 + 3?", controls={"interrupt": True})
        assert interrupting.status_code == 201, interrupting.text
        stream.read_until(turn_done)
    finally:
        stream.close()
    types = [e["event"] for e in stream.stored()]
    assert types.count("turn.started") == 1 and types.count("turn.completed") == 1
    assert types.count("llm.started") == 2 and types.count("llm.completed") == 1
    answers = [e["data"]["message"] for e in of_type(stream, "message.assistant")]
    assert [a["metadata"].get("interrupted") for a in answers] == [True, None]
    assert "2 + 3 = 5" in answers[1]["content"][0]["text"]
    deltas = of_type(stream, "message.delta")
    assert {d["data"]["message_id"] for d in deltas} == {a["id"] for a in answers}  # each its own stream
    items = requests.get(f"{path}/messages").json()["items"]
    assert [m["role"] for m in items] == ["user", "user", "assistant", "assistant"]
    assert items[1]["id"] == interrupting.json()["id"] and items[1]["controls"] == {"interrupt": True}
    assert requests.get(path).json()["status"] == "pending"


# --- an approval that outlives its worker ----------------------------------------------------------------
@pytest.fixture
def own_stack(seeded_tx, log_dir):
    """A web process and workers of this test's own, on a queue of its own, so the test may kill a worker.
    Returns (base URL, start_worker(name) -> Proc); every worker started is killed at the end."""
    queue = {"CELERY_QUEUE": f"turn-control-{settings.RUN_ID}"}
    workers: list[processes.Proc] = []

    def start_worker(name: str) -> processes.Proc:
        workers.append(processes.start_worker(log_dir, name=name, **queue, **processes.WORKER_ENV))
        return workers[-1]

    web = None
    try:
        web, url = processes.start_web(log_dir, **queue, **processes.WEB_ENV)
        yield url, start_worker
    finally:
        for worker in workers:
            worker.kill()
        if web:
            web.stop()


@pytest.mark.fault
def test_an_approval_survives_a_worker_restart(own_stack):
    base, start_worker = own_stack
    first = start_worker("approval-first")
    path = open_session(base, agent={"capabilities": ["test_math"]})
    agent_url = path.split("/sessions/")[0]
    patched = requests.patch(agent_url, json={"tool_policy": {"add": "ask"}})
    assert patched.status_code == 200 and patched.json()["tool_policy"] == {"add": "ask"}
    stream = Stream(f"{path}/events", timeout=90)
    try:
        assert say(path, "What is 7 + 8?").status_code == 201
        requested = stream.read_until(lambda e: e["event"] == "tool.approval_requested")[-1]["data"]["data"]
        assert requested["name"] == "add" and requested["arguments"] == {"a": 7, "b": 8}
        wait_for(lambda: requests.get(path).json()["status"] == "waiting", 10, message="session waiting")
        first.kill()  # SIGKILL: the worker that ran the turn so far is gone
        start_worker("approval-second")
        approval = requests.post(
            f"{path}/tool-calls/{requested['tool_call_id']}/approval", json={"approved": True, "reason": "go"}
        )
        assert approval.status_code == 202, approval.text
        stream.read_until(turn_done)
    finally:
        stream.close()
    items = requests.get(f"{path}/messages").json()["items"]
    assert [m["role"] for m in items] == ["user", "assistant", "tool_result", "assistant"]
    assert items[2]["content"][0]["result"] == {"result": 15}
    assert items[3]["content"][0]["text"] == "7 + 8 = 15."
    session = requests.get(path).json()
    assert session["status"] == "pending" and session["error"] is None
    types = [e["event"] for e in stream.stored()]
    for once in ("turn.started", "tool.approval_requested", "tool.approval_resolved", "tool.started", "turn.completed"):
        assert types.count(once) == 1, (once, types)
    resolved = of_type(stream, "tool.approval_resolved")[0]["data"]
    assert resolved == {"tool_call_id": requested["tool_call_id"], "approved": True, "reason": "go"}
    statuses = [e["data"]["status"] for e in of_type(stream, "session.status")]
    assert statuses == ["running", "waiting", "running", "pending"]
    sequences = [e["data"]["sequence"] for e in stream.stored()]
    assert sequences == list(range(1, len(sequences) + 1))
