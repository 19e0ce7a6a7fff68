"""Pure pieces of the MCP client: how a tool's result is stored, the header rules, the per-message size bound."""

import asyncio

import httpx
import pytest
from mcp import types

from agents.mcp.services import headers_errors
from everruns.mcp.client import describe, tool_result
from everruns.mcp.transport import _BoundedStream


def result(*content, structured=None, error=False) -> types.CallToolResult:
    return types.CallToolResult(content=list(content), structuredContent=structured, isError=error)


def text(value: str) -> types.TextContent:
    return types.TextContent(type="text", text=value)


def test_text_only_is_the_text():
    assert tool_result(result(text("a"), text("b")), 1000) == ("a\nb", None)


def test_structured_content_is_the_json():
    assert tool_result(result(text('{"sum": 3}'), structured={"sum": 3}), 1000) == ({"sum": 3}, None)


def test_fastmcps_wrapped_string_is_the_string():
    assert tool_result(result(text("HI"), structured={"result": "HI"}), 1000) == ("HI", None)


def test_an_image_is_our_image_part():
    image = types.ImageContent(type="image", data="aGk=", mimeType="image/png")
    value, error = tool_result(result(text("see"), image), 1000)
    assert error is None
    assert value == {
        "content": [{"type": "text", "text": "see"}, {"type": "image", "base64": "aGk=", "media_type": "image/png"}]
    }


def test_is_error_is_the_tools_error():
    assert tool_result(result(text("boom"), error=True), 1000) == (None, "boom")
    assert tool_result(result(error=True), 1000) == (None, "the MCP tool reported an error")


def test_a_result_over_the_limit_is_an_error():
    value, error = tool_result(result(text("x" * 200)), 100)
    assert value is None and "MCP_MAX_RESULT_BYTES" in error


def test_describe_finds_the_error_inside_exception_groups():
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [ConnectionRefusedError("refused")])])
    assert describe(group) == "ConnectionRefusedError: refused"


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"Authorization": "Bearer x"}, True),
        ({"X-A": "1", "X-B": "2"}, True),
        ({"Bad Name": "x"}, False),
        ({"X-A": "a\r\nInjected: 1"}, False),
        ({"Mcp-Session-Id": "x"}, False),
        ({"X-A": 1}, False),
        ({f"X-{i}": "v" for i in range(51)}, False),
        ("Authorization: x", False),
    ],
)
def test_header_rules(headers, ok):
    assert (headers_errors(headers) == []) is ok


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks):
        self.chunks = chunks

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk

    async def aclose(self):
        pass


def read(chunks, *, limit: int, events: bool) -> tuple[bytes, list[str]]:
    broken: list[str] = []

    async def go():
        out = b""
        async for chunk in _BoundedStream(Chunks(chunks), limit=limit, events=events, on_broken=broken.append):
            out += chunk
        return out

    try:
        return asyncio.run(go()), broken
    except httpx.ReadError:
        return b"", broken


def test_an_event_stream_is_bounded_per_event_not_in_total():
    events = [b"data: " + b"x" * 40 + b"\n\n" for _ in range(10)]
    body, broken = read(events, limit=60, events=True)
    assert len(body) == sum(map(len, events)) and broken == []


def test_one_event_over_the_limit_breaks_the_connection():
    body, broken = read([b"data: " + b"x" * 50, b"x" * 50 + b"\n\n"], limit=60, events=True)
    assert body == b"" and "MCP_MAX_RESULT_BYTES" in broken[0]


def test_a_json_answer_is_bounded_in_total_whatever_its_blank_lines():
    body, broken = read([b'{"a": "', b"\n\n" * 40, b'"}'], limit=60, events=False)
    assert body == b"" and broken
