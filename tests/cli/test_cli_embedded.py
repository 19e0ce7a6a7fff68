"""`everruns` as a subprocess against the embedded shape (uvicorn with its in-process worker, as `make run`):
a tool turn, JSON lines, approvals answered on stdin, Ctrl-C, watch across a dropped connection, exit codes."""

import json
import uuid

import pytest
import requests

from tests.cli.conftest import Cli, of_type
from tests.cli.proxy import CuttingProxy
from tests.conftest import wait_for
from tests.factories import make_model

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(seeded_tx, embedded, cli_home):
    return Cli(embedded, cli_home)


def make_agent(cli: Cli, *extra: str) -> str:
    agent = cli.json("agents", "create", "--name", "Calc", "--system-prompt", "You add numbers.", *extra)
    return agent["id"]


def session_of(base: str, agent_id: str) -> dict:
    """The agent's newest session, read over HTTP."""
    return requests.get(f"{base}/v1/agents/{agent_id}/sessions", timeout=10).json()["items"][0]


def events_of(base: str, agent_id: str, session_id: str) -> list[dict]:
    url = f"{base}/v1/agents/{agent_id}/sessions/{session_id}/events"
    return requests.get(url, params={"limit": 500}, timeout=10).json()["items"]


def test_chat_runs_a_tool_turn_and_shows_the_call_and_the_answer(cli, embedded):
    agent_id = make_agent(cli, "--capability", "test_math")
    done = cli.run("chat", agent_id, "What is 7 + 8?")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  → add(a=7, b=8)" in lines
    assert '  ← add: {"result": 15}' in lines
    assert any("15" in line and "→" not in line and "←" not in line for line in lines)
    assert "Traceback" not in done.stderr
    session = session_of(embedded, agent_id)
    assert session["status"] == "pending" and session["id"] in done.stderr  # the new session is named
    messages = requests.get(f"{embedded}/v1/agents/{agent_id}/sessions/{session['id']}/messages", timeout=10).json()
    assert [m["role"] for m in messages["items"]] == ["user", "assistant", "tool_result", "assistant"]


def test_chat_json_prints_one_event_per_line_tokens_included(cli, embedded):
    agent_id = make_agent(cli, "--capability", "test_math")
    done = cli.run("--json", "chat", agent_id, "What is 7 + 8?")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message.user" and kinds[-1] == "turn.completed"
    assert {"message.delta", "tool.started", "tool.completed", "message.assistant"} <= set(kinds)
    stored = [e["sequence"] for e in events if e["type"] != "message.delta"]
    assert stored == list(range(stored[0], stored[0] + len(stored)))  # every stored event, once, in order
    deltas = "".join(e["data"]["delta"] for e in of_type(events, "message.delta"))
    assert (
        "15" in deltas and deltas == of_type(events, "message.assistant")[-1]["data"]["message"]["content"][0]["text"]
    )
    assert done.stderr == ""  # --json: nothing for a person on stderr either


def test_chat_without_text_holds_a_conversation_line_by_line(cli, embedded):
    agent_id = make_agent(cli, "--capability", "test_math")
    done = cli.run("chat", agent_id, input="What is 7 + 8?\n\nWhat about 3 + 3?\n")  # then end of input
    assert done.returncode == 0, done.stderr
    assert "  → add(a=7, b=8)" in done.stdout and "  → add(a=3, b=3)" in done.stdout
    assert done.stdout.count("[turn completed") == 2
    session = session_of(embedded, agent_id)  # one session holds both turns
    messages = requests.get(f"{embedded}/v1/agents/{agent_id}/sessions/{session['id']}/messages", timeout=10).json()
    assert messages["total"] == 8


def test_json_may_stand_anywhere_on_the_line(cli):
    agent_id = make_agent(cli)
    for argv in (["--json", "agents", "list"], ["agents", "--json", "list"], ["agents", "list", "--json"]):
        done = cli.run(*argv)
        assert done.returncode == 0, done.stderr
        assert agent_id in [a["id"] for a in json.loads(done.stdout)["items"]]


def test_an_approval_is_answered_on_stdin(cli, embedded):
    agent_id = make_agent(cli, "--capability", "test_math", "--tool-policy", "add=ask")
    done = cli.run("chat", agent_id, "What is 7 + 8?", input="y\n")
    assert done.returncode == 0, done.stderr
    assert "approve add(a=7, b=8)? [y/N]" in done.stderr
    assert "  ✓ approved" in done.stdout and '  ← add: {"result": 15}' in done.stdout
    events = events_of(embedded, agent_id, session_of(embedded, agent_id)["id"])
    assert [e["data"]["approved"] for e in of_type(events, "tool.approval_resolved")] == [True]
    assert of_type(events, "tool.completed")[0]["data"]["status"] == "success"


def test_a_denial_on_stdin_reaches_the_model_as_a_tool_error(cli, embedded):
    agent_id = make_agent(cli, "--capability", "test_math", "--tool-policy", "add=ask")
    done = cli.run("chat", agent_id, "What is 7 + 8?", input="n\n")
    assert done.returncode == 0, done.stderr
    events = events_of(embedded, agent_id, session_of(embedded, agent_id)["id"])
    assert [e["data"]["approved"] for e in of_type(events, "tool.approval_resolved")] == [False]
    assert of_type(events, "tool.completed")[0]["data"]["error"].startswith("denied: ")


def test_approve_and_deny_find_the_session_s_agent(cli, embedded):
    make_agent(cli)  # another agent, newer than none: the lookup asks more than one
    agent_id = make_agent(cli, "--capability", "test_math", "--tool-policy", "add=ask")
    make_agent(cli)
    waiting = cli.run("chat", agent_id, "What is 7 + 8?", input="")  # stdin closed: nobody answers
    assert waiting.returncode == 0, waiting.stderr
    session_id = session_of(embedded, agent_id)["id"]
    assert session_of(embedded, agent_id)["status"] == "waiting"
    call_id = of_type(events_of(embedded, agent_id, session_id), "tool.approval_requested")[0]["data"]["tool_call_id"]
    assert f"everruns approve|deny {session_id} {call_id}" in waiting.stderr
    done = cli.run("deny", session_id, call_id, "--reason", "not now")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: session_of(embedded, agent_id)["status"] == "pending", message="the turn to go on")
    completed = of_type(events_of(embedded, agent_id, session_id), "tool.completed")
    assert completed[0]["data"]["error"] == "denied: not now"
    again = cli.run("approve", session_id, call_id)
    assert again.returncode == 1 and again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1


def test_ctrl_c_during_a_slow_turn_cancels_it_on_the_server(cli, embedded):
    slow = make_model(model_id="llmsim-slow", settings={"latency_ms": 60_000})
    agent_id = make_agent(cli, "--model", "llmsim-slow")
    assert str(slow.pk) == cli.json("agents", "show", agent_id)["default_model_id"]
    chat = cli.start("chat", agent_id, "Hello there", "--json")
    chat.wait_for_event(lambda e: e["type"] == "llm.started")
    assert chat.interrupt() == 130
    session = session_of(embedded, agent_id)
    assert session["status"] == "pending"
    events = events_of(embedded, agent_id, session["id"])
    assert [e["data"]["reason"] for e in of_type(events, "turn.cancelled")] == [
        "cancelled from the command line (Ctrl-C)"
    ]
    assert of_type(chat.events(), "turn.cancelled")  # it saw the server confirm before it exited


def test_watch_resumes_with_last_event_id_after_the_connection_drops(cli, embedded):
    make_model(model_id="llmsim-pause", settings={"latency_ms": 3000})
    agent_id = make_agent(cli, "--model", "llmsim-pause")
    session = cli.json("sessions", "create", agent_id, "--title", "watched")
    proxy = CuttingProxy(int(embedded.rsplit(":", 1)[1]))
    try:
        watch = Cli(proxy.url, cli.env["XDG_CONFIG_HOME"]).start("watch", agent_id, session["id"], "--json")
        path = f"{embedded}/v1/agents/{agent_id}/sessions/{session['id']}/messages"
        message = {"message": {"content": [{"type": "text", "text": "Hello"}]}}
        assert requests.post(path, json=message, timeout=10).status_code == 201
        before = watch.wait_for_event(lambda e: e["type"] == "llm.started")  # the model thinks for 3 s
        assert proxy.cut() >= 2
        watch.wait_for_event(lambda e: e["type"] == "turn.completed", timeout=60)
        assert watch.interrupt() == 130
    finally:
        proxy.close()
    stored = [e["sequence"] for e in watch.events() if e["sequence"] is not None]
    assert stored == list(range(1, len(stored) + 1))  # nothing lost, nothing twice
    resumed = [r for r in proxy.requests if b"GET /v1/" in r and b"/events" in r][1:]
    assert resumed and f"last-event-id: {before['sequence']}".encode() in resumed[0].lower()
    assert "the stream broke" in watch.stderr or "closed the stream" in watch.stderr


def test_a_failed_turn_exits_3(cli):
    make_model(model_id="error")  # llmsim's model named `error` always fails
    agent_id = make_agent(cli, "--model", "error")
    done = cli.run("chat", agent_id, "Hello")
    assert done.returncode == 3, done.stderr
    assert "turn failed:" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_agent_exits_1_with_the_api_s_message(cli):
    missing = str(uuid.uuid4())
    for argv in (["agents", "show", missing], ["chat", missing, "hi"], ["sessions", "list", missing]):
        done = cli.run(*argv)
        assert done.returncode == 1, argv
        assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith("error: ")
        assert "not found" in done.stderr.lower() and "Traceback" not in done.stderr
    cancel = cli.run("cancel", missing)
    assert cancel.returncode == 1 and cancel.stderr.strip() == "error: Session not found"


def test_a_bad_flag_or_a_missing_argument_exits_2(cli):
    for argv in (["agents", "list", "--no-such-flag"], ["chat"], ["agents", "create", "--name", "x"], ["nope"]):
        done = cli.run(*argv)
        assert done.returncode == 2, argv
        assert "Usage:" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_server_exits_1_with_one_line(cli_home):
    done = Cli("http://127.0.0.1:9", cli_home).run("agents", "list")
    assert done.returncode == 1 and done.stderr.startswith("error: cannot reach http://127.0.0.1:9")
    assert len(done.stderr.splitlines()) == 1


def test_export_then_import_makes_the_same_agent(cli, tmp_path):
    agent_id = make_agent(cli, "--capability", "test_math", "--tool-policy", "add=ask", "--tag", "math")
    exported = tmp_path / "calc.md"
    assert cli.run("agents", "export", agent_id, "-o", str(exported)).returncode == 0
    assert exported.read_text().startswith("---") and "You add numbers." in exported.read_text()
    imported = cli.json("import", str(exported))
    original = cli.json("agents", "show", agent_id)
    assert imported["id"] != agent_id
    for field in ("name", "system_prompt", "capabilities", "tool_policy", "tags"):
        assert imported[field] == original[field], field


def test_the_reference_conversation_with_the_cli_alone(cli):
    """The reference notebook's conversation (health, agent, session, three questions, the history, cleanup)."""
    assert cli.json("health")["status"] == "ok"
    agent = cli.json(
        "agents",
        "create",
        "--name",
        "Python Example Agent",
        "--description",
        "A helpful assistant created via the Python API",
        "--system-prompt",
        "You are a helpful assistant. Be concise and friendly.",
        "--tag",
        "example",
        "--tag",
        "python",
    )
    assert agent["tags"] == ["example", "python"]
    session = cli.json("sessions", "create", agent["id"], "--title", "Python API Test Session", "--tag", "test")
    assert session["status"] == "pending" and session["tags"] == ["test"]
    for question in ("What is 2 + 2? Please explain your reasoning.", "What about 3 + 3?", "Tell me a short joke."):
        done = cli.run("chat", agent["id"], question, "--session", session["id"])
        assert done.returncode == 0 and done.stdout.strip(), done.stderr
    shown = cli.run("sessions", "show", agent["id"], session["id"])
    assert shown.returncode == 0
    assert "user: What about 3 + 3?" in shown.stdout and shown.stdout.count("assistant: ") == 3
    messages = cli.json("sessions", "messages", agent["id"], session["id"])
    assert messages["total"] == 6
    assert cli.run("sessions", "delete", agent["id"], session["id"]).returncode == 0
    assert cli.run("agents", "delete", agent["id"]).returncode == 0
    assert cli.json("agents", "show", agent["id"])["status"] == "archived"
