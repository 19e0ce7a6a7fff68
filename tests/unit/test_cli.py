"""The command line's pure parts, no server: how events and resources are printed, when a chat turn is over,
cursors, the config file and its precedence, error lines, and resuming a stream (over httpx's MockTransport)."""

import ast
import io
import json
from pathlib import Path

import httpx
import pytest
from rich.console import Console

import everruns_cli
from everruns_cli.chat import TurnTracker
from everruns_cli.client import Api, ApiError
from everruns_cli.config import DEFAULT_URL, ConfigError, read_config, resolve, write_config
from everruns_cli.render import EventPrinter, call_text, content_text, one_line, table
from everruns_cli.stream import EventFollower, parse_cursor

MSG = "01a2-assistant"


def printer(**kwargs) -> tuple[EventPrinter, io.StringIO]:
    buffer = io.StringIO()
    return EventPrinter(Console(file=buffer, width=200, color_system=None), **kwargs), buffer


def event(kind: str, sequence: int | None = None, turn_id: str | None = "t1", **data) -> dict:
    return {"type": kind, "sequence": sequence, "turn_id": turn_id, "data": data}


def assistant(text: str, message_id: str = MSG, **metadata) -> dict:
    return event(
        "message.assistant",
        message={"id": message_id, "content": [{"type": "text", "text": text}], "metadata": metadata},
    )


def delta(text: str, message_id: str = MSG) -> dict:
    return event("message.delta", message_id=message_id, delta=text)


def test_streamed_tokens_are_not_printed_again_by_the_stored_message():
    show, out = printer()
    for piece in ("7 ", "+ 8 ", "= 15."):
        show(delta(piece))
    show(assistant("7 + 8 = 15."))
    show(event("turn.completed", iterations=1, usage={"input_tokens": 3, "output_tokens": 4}))
    assert out.getvalue() == "7 + 8 = 15.\n[turn completed: 1 model call(s), 3 in, 4 out]\n"


def test_the_stored_message_completes_what_the_deltas_missed():
    show, out = printer()
    show(delta("The answer"))  # the connection dropped here: the rest of the deltas are gone
    show(assistant("The answer is 15."))
    assert out.getvalue() == "The answer is 15.\n"


def test_an_answer_without_deltas_is_printed_whole():
    show, out = printer()
    show(assistant("Hello."))
    assert out.getvalue() == "Hello.\n"


def test_tool_calls_and_results_take_one_line_each():
    show, out = printer()
    show(event("tool.started", tool_call_id="c1", name="add", arguments={"a": 7, "b": 8}))
    show(event("tool.completed", tool_call_id="c1", name="add", status="success", result={"result": 15}, error=None))
    show(
        event("tool.completed", tool_call_id="c2", name="divide", status="error", result=None, error="division by zero")
    )
    assert out.getvalue().splitlines() == [
        "  → add(a=7, b=8)",
        '  ← add: {"result": 15}',
        "  ← divide error: division by zero",
    ]


def test_a_tool_line_ends_the_streamed_text_first():
    show, out = printer()
    show(delta("Let me add."))
    show(event("tool.started", tool_call_id="c1", name="add", arguments={"a": 1, "b": 2}))
    assert out.getvalue() == "Let me add.\n  → add(a=1, b=2)\n"


def test_approvals_and_turn_endings():
    show, out = printer()
    show(event("tool.approval_requested", tool_call_id="c1", name="add", arguments={"a": 1, "b": 2}))
    show(event("tool.approval_resolved", tool_call_id="c1", approved=False, reason="not now"))
    show(event("turn.failed", error={"code": "max_iterations", "message": "Too many model calls"}))
    show(event("turn.cancelled", reason=None))
    assert out.getvalue().splitlines() == [
        "  ? add(a=1, b=2) waits for approval (tool call c1)",
        "  ✗ denied: not now",
        "[turn failed: max_iterations: Too many model calls]",
        "[turn cancelled]",
    ]


def test_a_cancelled_partial_answer_says_so():
    show, out = printer()
    show(delta("Once upon"))
    show(assistant("Once upon", cancelled=True))
    assert out.getvalue() == "Once upon\n(cancelled: the partial answer is kept)\n"


def test_chat_hides_the_user_s_own_words_and_the_bookkeeping_watch_shows_them():
    quiet, quiet_out = printer()
    loud, loud_out = printer(show_user=True, show_status=True)
    user = event("message.user", message={"id": "u1", "content": [{"type": "text", "text": "Hi"}]})
    for e in (user, event("session.status", status="running"), event("turn.started"), event("llm.started")):
        quiet(e)
        loud(e)
    assert quiet_out.getvalue() == ""
    assert loud_out.getvalue().splitlines() == ["> Hi", "[status: running]", "[turn started]"]


def test_long_results_are_cut_on_screen_and_lines_stay_single():
    assert one_line("a\nb   c") == "a b c"
    cut = one_line("x" * 500)
    assert len(cut) == 200 and cut.endswith("…")
    assert call_text("get_weather", {"location": "Paris", "days": 2}) == 'get_weather(location="Paris", days=2)'


def test_message_content_as_one_line():
    parts = [
        {"type": "text", "text": "Adding."},
        {"type": "tool_call", "id": "c1", "name": "add", "arguments": {"a": 1, "b": 2}},
    ]
    assert content_text(parts) == "Adding. → add(a=1, b=2)"
    result = [{"type": "tool_result", "tool_call_id": "c1", "name": "add", "result": None, "error": "denied: no"}]
    assert content_text(result) == "← add: denied: no"


def test_list_tables_show_whole_ids():
    buffer = io.StringIO()
    items = [
        {"id": "01a25141-a4ed-71c8-9e2d-de18ce178ce9", "model_id": "llmsim-1", "display_name": "x", "is_default": True}
    ]
    Console(file=buffer, width=60, color_system=None).print(table("models", items))
    assert "01a25141-a4ed-71c8-9e2d-de18ce178ce9" in buffer.getvalue() and "yes" in buffer.getvalue()


def test_a_turn_is_over_when_the_turn_that_took_the_message_ends():
    tracker = TurnTracker("m2")
    assert not tracker.observe(event("turn.completed", turn_id="t0"))  # an earlier turn, before our message
    assert not tracker.observe(event("message.user", message={"id": "m2"}))
    assert not tracker.observe(event("turn.started", turn_id="t1", input_message_ids=["m2"]))
    assert not tracker.observe(event("turn.completed", turn_id="t0"))
    assert tracker.concerns(event("tool.approval_requested", turn_id="t1"))
    assert not tracker.concerns(event("tool.approval_requested", turn_id="t0"))
    assert tracker.observe(event("turn.failed", turn_id="t1"))


def test_a_message_that_joins_a_running_turn_ends_with_it():
    tracker = TurnTracker("m2")
    assert not tracker.observe(event("message.user", message={"id": "m1"}))
    assert not tracker.observe(event("message.user", message={"id": "m2"}))
    assert tracker.observe(event("turn.completed", turn_id="t0"))


@pytest.mark.parametrize(("raw", "cursor"), [("7", 7), ("session-abc:12", 12), ("0", 0), ("x", None), ("-1", None)])
def test_cursors(raw, cursor):
    assert parse_cursor(raw) == cursor


def test_flags_then_environment_then_config_file_then_the_default(tmp_path):
    path = tmp_path / "everruns" / "config.toml"
    write_config(path, {"url": "http://file:1", "api_key": 'evr_"quoted"'})
    assert read_config(path) == {"url": "http://file:1", "api_key": 'evr_"quoted"'}
    assert path.stat().st_mode & 0o777 == 0o600
    env = {"EVERRUNS_URL": "http://env:2"}
    assert resolve(url=None, api_key=None, environ=env, path=path).url == "http://env:2"
    assert resolve(url="http://flag:3", api_key=None, environ=env, path=path).url == "http://flag:3"
    assert resolve(url=None, api_key=None, environ={}, path=path).api_key == 'evr_"quoted"'
    assert resolve(url=None, api_key=None, environ={}, path=tmp_path / "none.toml").url == DEFAULT_URL


def test_a_broken_config_file_is_an_error_not_a_traceback(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("url = ")
    with pytest.raises(ConfigError, match="cannot read the config file"):
        read_config(path)


def test_the_error_line_is_the_envelope_s_message_with_its_field_errors():
    envelope = {"error": {"code": "validation_error", "message": "Invalid input", "details": {"name": ["Required."]}}}
    error = ApiError.from_response(httpx.Response(400, json=envelope))
    assert (error.status, error.code, error.message) == (400, "validation_error", "Invalid input (name: Required.)")
    assert ApiError.from_response(httpx.Response(502, text="<html>bad gateway</html>")).message == "HTTP 502"


def sse(*events: dict) -> bytes:
    return "".join(f"event: {e['type']}\nid: {e['sequence']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def test_a_dropped_stream_resumes_after_the_last_event_seen():
    """The first connection ends after two events; the second must ask for what came after them."""
    log = [event("session.status", sequence=n, status="running") for n in (1, 2, 3)]
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        after = int(request.headers.get("last-event-id") or 0)
        page = log[after : after + 2]
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(*page))

    drops: list[str] = []
    api = Api("http://server", transport=httpx.MockTransport(handler))
    follower = EventFollower(api, "a", "s", on_reconnect=drops.append, sleep=lambda s: None)
    seen = []
    for e in follower.events():
        seen.append(e["sequence"])
        if len(seen) == 3:
            break
    assert seen == [1, 2, 3] and asked == [None, "2"]
    assert drops == ["the server closed the stream"] and follower.cursor == 3


def test_a_stream_refused_with_a_4xx_is_final_and_a_5xx_is_retried():
    answers = iter([httpx.Response(503, json={"error": {"code": "unavailable", "message": "later"}})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(404, json={"error": {"code": "not_found", "message": "Session not found"}}))

    drops: list[str] = []
    api = Api("http://server", transport=httpx.MockTransport(handler))
    follower = EventFollower(api, "a", "s", on_reconnect=drops.append, sleep=lambda s: None)
    with pytest.raises(ApiError, match="Session not found"):
        follower.open()
    assert drops == ["503 later; retrying in 0.2s"]


def test_the_cli_imports_nothing_of_the_server():
    """A client of the public API only: no module of the Django project, Django or the runner's libraries."""
    server = {"everruns", "agents", "sessions", "runner", "django", "rest_framework", "celery", "litellm"}
    package = Path(everruns_cli.__file__).parent
    imported = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert imported & server == set()
    assert "everruns_cli" in imported and "httpx" in imported  # the walk saw the imports
