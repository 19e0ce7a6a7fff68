"""A real MCP server for the tests: the SDK's FastMCP on a loopback port, streamable HTTP or SSE.

    python -m tests.mcp_server --port 8765 --transport streamable-http --log /tmp/calls.jsonl

Every call (its arguments, `_meta` and request headers) and every cancellation it sees is a JSON line in `--log`,
written and flushed at once, so a test reads what the server saw even after killing it.
"""

import argparse
import asyncio
import json
import os

from mcp.server.fastmcp import Context, FastMCP, Image
from mcp.types import ToolAnnotations

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def build(log_path: str, port: int) -> FastMCP:
    server = FastMCP("everruns-test", host="127.0.0.1", port=port, log_level="WARNING")

    def record(event: str, ctx: Context, tool: str, arguments: dict | None = None) -> None:
        request = ctx.request_context.request
        meta = ctx.request_context.meta
        entry = {
            "event": event,
            "tool": tool,
            "arguments": arguments,
            "meta": meta.model_dump(mode="json") if meta else None,
            "headers": dict(request.headers) if request is not None else {},
        }
        with open(log_path, "a") as log:
            log.write(json.dumps(entry) + "\n")
            log.flush()
            os.fsync(log.fileno())

    @server.tool(description="Returns the text it is given.")
    def echo(text: str, ctx: Context) -> str:
        record("call", ctx, "echo", {"text": text})
        return f"echo: {text}"

    @server.tool(description="Adds two numbers (structured content).", annotations=ToolAnnotations(readOnlyHint=True))
    def add(a: float, b: float, ctx: Context) -> dict:
        record("call", ctx, "add", {"a": a, "b": b})
        return {"sum": a + b}

    @server.tool(description="Always raises.")
    def explode(ctx: Context) -> str:
        record("call", ctx, "explode")
        raise ValueError("the tool exploded on purpose")

    @server.tool(description="A picture.")
    def picture(ctx: Context) -> Image:
        record("call", ctx, "picture")
        return Image(data=PNG_1x1, format="png")

    @server.tool(description="Returns `size` characters.")
    def big(size: int, ctx: Context) -> str:
        record("call", ctx, "big", {"size": size})
        return "x" * size

    async def sleeper(name: str, seconds: float, ctx: Context) -> str:
        record("call", ctx, name, {"seconds": seconds})
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            record("cancelled", ctx, name)
            raise
        record("finished", ctx, name)
        return f"slept {seconds:g} s"

    @server.tool(description="Sleeps, then answers (not idempotent).")
    async def slow(seconds: float, ctx: Context) -> str:
        return await sleeper("slow", seconds, ctx)

    @server.tool(description="Sleeps, then answers; safe to repeat.", annotations=ToolAnnotations(idempotentHint=True))
    async def slow_idempotent(seconds: float, ctx: Context) -> str:
        return await sleeper("slow_idempotent", seconds, ctx)

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", default="streamable-http", choices=["streamable-http", "sse"])
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    build(args.log, args.port).run(args.transport)


if __name__ == "__main__":
    main()
