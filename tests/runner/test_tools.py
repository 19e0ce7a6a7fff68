import pytest

from runner.tools import registry
from runner.tools.base import ToolContext, ToolError
from tests.factories import make_session


def call(name: str, args: dict, session_id: str = "none"):
    tool = next(t for c in registry.CAPABILITIES.values() for t in c.tools if t.name == name)
    return tool.func(ToolContext(session_id=session_id), args)


@pytest.mark.parametrize(
    "name,a,b,result",
    [("add", 7, 8, 15), ("subtract", 2, 5, -3), ("multiply", 2.5, 4, 10), ("divide", 7, 2, 3.5)],
)
def test_math(name, a, b, result):
    assert call(name, {"a": a, "b": b}) == {"result": result}


@pytest.mark.parametrize("args", [{"a": 1, "b": 0}, {"a": 1}, {"a": "x", "b": 1}, {"a": True, "b": 1}])
def test_math_errors(args):
    with pytest.raises(ToolError):
        call("divide", args)


def test_current_time_formats_and_bad_timezone():
    assert call("get_current_time", {"timezone": "Europe/Paris"})["time"][-6:] in ("+01:00", "+02:00")
    assert isinstance(call("get_current_time", {"format": "unix"})["time"], int)
    assert "UTC" in call("get_current_time", {"format": "human"})["time"]
    with pytest.raises(ToolError, match="unknown timezone"):
        call("get_current_time", {"timezone": "Mars/Olympus"})
    with pytest.raises(ToolError):
        call("get_current_time", {"format": "roman"})


def test_weather_is_deterministic_and_validated():
    first = call("get_weather", {"location": "Paris"})
    same = call("get_weather", {"location": " paris "})
    assert {k: v for k, v in same.items() if k != "location"} == {k: v for k, v in first.items() if k != "location"}
    assert first != call("get_weather", {"location": "Oslo"})
    imperial = call("get_weather", {"location": "Paris", "units": "imperial"})
    assert imperial["temperature"] == round(first["temperature"] * 9 / 5 + 32, 1)
    forecast = call("get_forecast", {"location": "Paris", "days": 5})
    assert [d["day"] for d in forecast["days"]] == [1, 2, 3, 4, 5]
    for bad in ({"location": ""}, {"location": "x", "units": "kelvin"}):
        with pytest.raises(ToolError):
            call("get_weather", bad)
    with pytest.raises(ToolError):
        call("get_forecast", {"location": "x", "days": 8})


def test_todos():
    result = call(
        "write_todos", {"todos": [{"content": "a", "status": "in_progress"}, {"content": "b", "status": "pending"}]}
    )
    assert result["counts"] == {"pending": 1, "in_progress": 1, "completed": 0} and result["warning"] is None
    for bad in (
        {"todos": "x"},
        {"todos": [{"content": "", "status": "pending"}]},
        {"todos": [{"content": "a", "status": "done"}]},
    ):
        with pytest.raises(ToolError):
            call("write_todos", bad)


def test_session_file_tools(seeded):
    sid = str(make_session().pk)
    assert call("write_file", {"path": "notes/a.md", "content": "hello\nworld"}, sid) == {
        "path": "/notes/a.md",
        "size_bytes": 11,
        "created": True,
    }
    assert call("write_file", {"path": "/notes/a.md", "content": "hello again"}, sid)["created"] is False
    assert call("read_file", {"path": "/notes/a.md"}, sid)["content"] == "hello again"
    assert [e["path"] for e in call("list_directory", {}, sid)["entries"]] == ["/notes"]
    assert call("grep_files", {"pattern": "again"}, sid)["matches"] == [
        {"path": "/notes/a.md", "line_number": 1, "line": "hello again"}
    ]
    assert call("stat_file", {"path": "/notes"}, sid)["is_directory"] is True
    assert call("copy_file", {"src": "/notes/a.md", "dst": "/notes/b.md"}, sid)["path"] == "/notes/b.md"
    assert call("read_file", {"path": "/notes/b.md"}, sid)["content"] == "hello again"
    with pytest.raises(ToolError, match="already exists"):
        call("copy_file", {"src": "/notes/a.md", "dst": "/notes/b.md"}, sid)
    assert call("move_file", {"src": "/notes/b.md", "dst": "/archive/b.md"}, sid)["path"] == "/archive/b.md"
    assert [e["path"] for e in call("list_directory", {}, sid)["entries"]] == ["/archive", "/notes"]
    with pytest.raises(ToolError, match="does not exist"):
        call("move_file", {"src": "/notes/b.md", "dst": "/c.md"}, sid)
    call("delete_file", {"path": "/archive", "recursive": True}, sid)
    with pytest.raises(ToolError, match="not empty"):
        call("delete_file", {"path": "/notes"}, sid)
    assert call("delete_file", {"path": "/notes", "recursive": True}, sid) == {"deleted": 2}
    for name, args in [
        ("read_file", {"path": "/nope"}),
        ("read_file", {"path": "../x"}),
        ("grep_files", {"pattern": "("}),
        ("read_file", {}),
    ]:
        with pytest.raises(ToolError):
            call(name, args, sid)
