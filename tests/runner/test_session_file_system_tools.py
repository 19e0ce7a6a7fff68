"""The session_file_system tools' limits: grep_files cannot stall the process, list_directory pages."""

import threading
import time

import pytest

from runner.tools import registry
from runner.tools.base import ToolContext, ToolError
from runner.tools.session_file_system import LIST_PAGE
from sessions.fs import files
from tests.factories import make_session


def call(name: str, args: dict, session_id):
    tool = next(t for t in registry.CAPABILITIES["session_file_system"].tools if t.name == name)
    return tool.func(ToolContext(session_id=str(session_id)), args)


@pytest.fixture
def session_id(seeded):
    return make_session().pk


def timed_with_a_ticker(work) -> tuple[float, float, object]:
    """Run work() here while another thread wakes every 10 ms (as /health would need to run while a tool
    works on the worker's pool). Returns (how long work took, the longest the other thread was held up
    past its 10 ms, work's result)."""
    stop, longest = threading.Event(), [0.0]

    def tick():
        last = time.monotonic()
        while not stop.is_set():
            time.sleep(0.01)
            now = time.monotonic()
            longest[0], last = max(longest[0], now - last - 0.01), now

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    time.sleep(0.05)
    started = time.monotonic()
    try:
        result = work()
    finally:
        took = time.monotonic() - started
        stop.set()
        ticker.join(60)
    return took, longest[0], result


def test_a_catastrophic_pattern_neither_takes_long_nor_stalls_other_threads(session_id):
    # With Python's backtracking `re`, this pattern on these 28 bytes held the GIL for ~8 s.
    files.create(session_id, "/a.txt", content="a" * 27 + "b")
    took, stall, result = timed_with_a_ticker(lambda: call("grep_files", {"pattern": "^(a|a)*$"}, session_id))
    assert result == {"matches": []}
    assert took < 1.0 and stall < 0.5, (took, stall)


def test_a_grep_over_its_time_budget_is_a_tool_error(session_id, settings):
    files.create(session_id, "/many.txt", content="x\n" * 300_000)
    settings.SESSION_FS_GREP_SECONDS = 0.001
    started = time.monotonic()
    with pytest.raises(ToolError, match="grep stopped after 0.001 s"):
        call("grep_files", {"pattern": "y"}, session_id)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "pattern, reason",
    [("a" * 1001, "At most 1000 characters"), (r"(a)\1", "invalid escape"), ("(?=a)", "invalid perl operator")],
)
def test_patterns_over_the_length_cap_or_outside_re2_are_tool_errors(session_id, pattern, reason):
    files.create(session_id, "/a.txt", content="aa")
    with pytest.raises(ToolError, match=reason):
        call("grep_files", {"pattern": pattern}, session_id)


def test_list_directory_returns_bounded_pages(session_id):
    for number in range(LIST_PAGE + 5):
        files.create(session_id, f"/d/{number:04}.txt", content="")
    first = call("list_directory", {"path": "/d"}, session_id)
    assert len(first["entries"]) == LIST_PAGE and (first["total"], first["limit"], first["offset"]) == (
        LIST_PAGE + 5,
        LIST_PAGE,
        0,
    )
    rest = call("list_directory", {"path": "/d", "offset": LIST_PAGE, "limit": 10}, session_id)
    assert [e["name"] for e in rest["entries"]] == [f"{n:04}.txt" for n in range(LIST_PAGE, LIST_PAGE + 5)]
    for bad in ({"limit": LIST_PAGE + 1}, {"limit": 0}, {"offset": -1}, {"limit": "10"}, {"limit": True}):
        with pytest.raises(ToolError, match="must be an integer"):
            call("list_directory", {"path": "/d", **bad}, session_id)
