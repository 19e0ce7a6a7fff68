"""Our one adapter to the MCP Python SDK (mcp 1.28.1): list a server's tools, call one, and keep a connection per
server on the worker's event loop.

A connection is an asyncio task that holds the SDK's transport and ClientSession open (anyio's task groups
must be entered and left in one task); calls are tasks of the turns that make them, so a waiting call holds
no thread. A connection that breaks (the server went away, a protocol error, an answer too large) fails the
calls waiting on it at once and is replaced at the next call.

mcp 1.x, not 2.x: 2.x moved from httpx to its fork httpx2, and our address guard (transport.py) and httpx pin
are httpx's. The SDK numbers its JSON-RPC requests itself (and matches answers by those numbers), so the tool
call's id goes to the server in the request's `_meta` as `everruns/tool_call_id`.
"""

import asyncio
import contextlib
import json
import logging
import time

import anyio
from mcp import ClientSession, McpError, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from everruns.mcp.config import McpTimeout, McpUnavailable, ServerConfig, SessionForgotten
from everruns.mcp.transport import guarded_client

logger = logging.getLogger(__name__)

CALL_ID_META = "everruns/tool_call_id"
CANCEL_NOTICE_SECONDS = 2.0  # the most a cancellation notice may delay the end of a cancelled call
MAX_TOOL_PAGES = 20
MAX_LIST_SECONDS = 30.0  # listing runs in a web request: at most this long, whatever the server's time-out
CONNECTION_CLOSED = -32000  # mcp.shared.exceptions: the SDK's code for a session whose stream ended
SESSION_TERMINATED = 32600  # the SDK's code when a streamable HTTP server forgot the session (404)


def describe(exc: BaseException) -> str:
    """A short reason for the model and `last_error`: the first real error inside the SDK's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = next((e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)), exc.exceptions[0])
    if isinstance(exc, McpError):
        return f"MCP error {exc.error.code}: {exc.error.message}"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, McpUnavailable | McpTimeout) else f"{type(exc).__name__}: {text}"


@contextlib.asynccontextmanager
async def _session(config: ServerConfig, on_broken):
    """An initialised ClientSession on the server's transport (to be entered and left in one task)."""

    def client(headers=None, timeout=None, auth=None):
        return guarded_client(
            headers={**(headers or {}), **dict(config.headers)},
            connect_timeout=config.connect_timeout,
            allowed_hosts=list(config.allowed_hosts),
            max_message_bytes=config.max_message_bytes,
            on_broken=on_broken,
        )

    async with contextlib.AsyncExitStack() as stack:
        if config.transport == "sse":
            read, write = await stack.enter_async_context(sse_client(config.url, httpx_client_factory=client))
        else:
            http = await stack.enter_async_context(client())
            read, write, _ = await stack.enter_async_context(streamable_http_client(config.url, http_client=http))
        session = await stack.enter_async_context(ClientSession(read, write))
        with anyio.fail_after(config.connect_timeout):
            await session.initialize()
        yield session


def _tool_info(tool: types.Tool) -> dict:
    annotations = tool.annotations
    return {
        "name": tool.name,
        "description": tool.description or tool.title or "",
        "parameters": tool.inputSchema or {"type": "object", "properties": {}},
        # Crash recovery runs a started call again only when the server says that is safe (API.md).
        "idempotent": bool(annotations and annotations.idempotentHint),
    }


async def _list_tools(config: ServerConfig) -> list[dict]:
    broken: list[str] = []
    tools, cursor = [], None
    limit = min(config.timeout_seconds, MAX_LIST_SECONDS)
    try:
        with anyio.fail_after(limit):
            async with _session(config, broken.append) as session:
                for _ in range(MAX_TOOL_PAGES):
                    page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
                    tools += [_tool_info(t) for t in page.tools]
                    cursor = page.nextCursor
                    if not cursor:
                        break
    except TimeoutError:
        raise McpUnavailable(broken[0] if broken else f"no answer within {limit:g} s") from None
    except Exception as exc:
        raise McpUnavailable(broken[0] if broken else describe(exc)) from None
    return tools


def list_tools(config: ServerConfig) -> list[dict]:
    """The server's tools, [{name, description, parameters, idempotent}], from synchronous code (the web: when a
    server is saved or refreshed). Raises McpUnavailable."""
    return asyncio.run(_list_tools(config))


def _part(item) -> dict:
    if isinstance(item, types.TextContent):
        return {"type": "text", "text": item.text}
    if isinstance(item, types.ImageContent):
        return {"type": "image", "base64": item.data, "media_type": item.mimeType}
    if isinstance(item, types.AudioContent):
        return {"type": "audio", "base64": item.data, "media_type": item.mimeType}
    if isinstance(item, types.EmbeddedResource):
        res = item.resource
        if isinstance(res, types.TextResourceContents):
            return {"type": "resource", "uri": str(res.uri), "media_type": res.mimeType, "text": res.text}
        return {"type": "resource", "uri": str(res.uri), "media_type": res.mimeType, "base64": res.blob}
    if isinstance(item, types.ResourceLink):
        return {"type": "resource_link", "uri": str(item.uri), "name": item.name}
    return {"type": "text", "text": json.dumps(item.model_dump(mode="json"))}


def _wrapped_text(structured: dict, text: str) -> bool:
    return list(structured) == ["result"] and isinstance(structured["result"], str) and structured["result"] == text


def tool_result(result: types.CallToolResult, max_bytes: int) -> tuple[object, str | None]:
    """(result, error) as a tool result stores them: JSON (structured content) or text when that is all there is,
    else {"content": [parts], "structured_content"}; images are our image parts. `isError` is the tool's error."""
    parts = [_part(item) for item in result.content]
    texts = [p["text"] for p in parts if p["type"] == "text"]
    if result.isError:
        return None, "\n".join(texts) or "the MCP tool reported an error"
    only_text = len(texts) == len(parts)
    structured = result.structuredContent
    if structured is not None and only_text and _wrapped_text(structured, "\n".join(texts)):
        value = "\n".join(texts)  # FastMCP's {"result": <the text>} around a tool that returns a string
    elif structured is not None and only_text:
        value = structured
    elif only_text:
        value = "\n".join(texts)
    else:
        value = {"content": parts}
        if result.structuredContent is not None:
            value["structured_content"] = result.structuredContent
    size = len(json.dumps(value))
    if size > max_bytes:
        return None, f"the MCP tool's result is {size} bytes, over MCP_MAX_RESULT_BYTES ({max_bytes})"
    return value, None


class Connection:
    """One open session with one server, owned by its own task on the running loop."""

    def __init__(self, config: ServerConfig):
        loop = asyncio.get_running_loop()
        self.config = config
        self.ready: asyncio.Future = loop.create_future()  # -> the ClientSession
        self.broken: asyncio.Future = loop.create_future()  # -> why this connection is done
        self.task = loop.create_task(self._own(), name=f"mcp-{config.name}")
        self.active = 0  # calls in flight on it
        self.retired = False  # out of the pool: closes when its last call ends

    def _break(self, reason: str) -> None:
        if not self.broken.done():
            self.broken.set_result(reason)

    def usable(self) -> bool:
        return not self.broken.done()

    async def _own(self) -> None:
        try:
            async with _session(self.config, self._break) as session:
                self.ready.set_result(session)
                await asyncio.shield(self.broken)
        except asyncio.CancelledError:
            self._break("the connection was closed")
            raise
        except BaseException as exc:
            self._break(describe(exc))
        finally:
            self._break("the connection was closed")
            if not self.ready.done():
                self.ready.set_exception(McpUnavailable(self.broken.result()))
                self.ready.exception()  # retrieved: a connection nobody waits for must not log it

    def retire(self) -> None:
        """Out of the pool (the server's settings changed): the calls in flight finish on it, then it closes."""
        self.retired = True
        if not self.active:
            self._break("the connection was closed")

    async def call(self, name: str, arguments: dict, *, call_id: str) -> types.CallToolResult:
        """Call the tool, bounded by the server's time-out (connecting included). Cancelling the caller, or the
        time-out, sends the server a cancellation notice for the request."""
        self.active += 1
        try:
            return await self._call(name, arguments, call_id)
        finally:
            self.active -= 1
            if self.retired and not self.active:
                self._break("the connection was closed")

    async def _call(self, name: str, arguments: dict, call_id: str) -> types.CallToolResult:
        deadline = time.monotonic() + self.config.timeout_seconds
        session = await self._wait(self.ready, deadline)
        # mcp 1.28.1 (private): the id send_request gives the next request, read before call_tool first awaits.
        request_id = session._request_id
        call = asyncio.ensure_future(session.call_tool(name, arguments, meta={CALL_ID_META: call_id}))
        try:
            return await self._wait(call, deadline)
        except asyncio.CancelledError:
            call.cancel()
            await self._cancel_notice(session, request_id, "the caller cancelled the call")
            raise
        except McpTimeout:
            call.cancel()
            await self._cancel_notice(session, request_id, "timed out")
            raise
        except McpError as exc:
            if exc.error.code in (CONNECTION_CLOSED, SESSION_TERMINATED):
                self._break(describe(exc))
                kind = SessionForgotten if exc.error.code == SESSION_TERMINATED else McpUnavailable
                raise kind(describe(exc)) from None
            raise

    async def _wait(self, future: asyncio.Future, deadline: float):
        """The future's result, unless the connection breaks first (McpUnavailable) or the deadline passes."""
        left = deadline - time.monotonic()
        if left > 0 and not self.broken.done():
            await asyncio.wait([future, self.broken], timeout=left, return_when=asyncio.FIRST_COMPLETED)
        if future.done():
            return future.result()
        if self.broken.done():
            if future is not self.ready:  # the connection's own start-up is shared by every waiting call
                future.cancel()
            raise McpUnavailable(self.broken.result())
        raise McpTimeout(f"the MCP server did not answer within {self.config.timeout_seconds:g} s")

    async def _cancel_notice(self, session: ClientSession, request_id: int, reason: str) -> None:
        notice = types.ClientNotification(
            types.CancelledNotification(params=types.CancelledNotificationParams(requestId=request_id, reason=reason))
        )
        try:
            await asyncio.wait_for(session.send_notification(notice), CANCEL_NOTICE_SECONDS)
        except Exception as exc:  # the server is gone or slow: the call is abandoned either way
            logger.info("MCP server %s: cancellation notice not sent (%s)", self.config.name, describe(exc))


_connections: dict[str, Connection] = {}


def connection(config: ServerConfig) -> Connection:
    """This loop's open connection to the server (one per server per worker), opened or reopened as needed.
    Only the worker's runtime loop calls it."""
    found = _connections.get(config.id)
    if (
        found is not None
        and found.usable()
        and found.config.fingerprint() == config.fingerprint()
        and found.task.get_loop() is asyncio.get_running_loop()
    ):
        return found
    if found is not None:
        found.retire()
    _connections[config.id] = opened = Connection(config)
    return opened


async def call_tool(config: ServerConfig, name: str, arguments: dict, *, call_id: str) -> tuple[object, str | None]:
    """(result, error) of one call on the pooled connection; every failure is an error for the model."""
    try:
        try:
            result = await connection(config).call(name, arguments, call_id=call_id)
        except SessionForgotten:  # the server restarted since: the call did not run there, a new session may
            result = await connection(config).call(name, arguments, call_id=call_id)
    except McpTimeout as exc:
        return None, f"timed out: {exc}"
    except McpUnavailable as exc:
        return None, f"MCP server {config.name} unavailable: {exc}"
    except Exception as exc:
        return None, f"MCP server {config.name}: {describe(exc)}"
    return tool_result(result, config.max_message_bytes)
