"""Running the tool calls of one LLM response, concurrently, each bounded in time."""

import asyncio
import dataclasses
import json
import logging
import time

from django.conf import settings
from django.db import connection

from runner.tools.base import Tool, ToolContext, ToolError

logger = logging.getLogger(__name__)


def parse_arguments(raw) -> tuple[dict, str | None]:
    """(arguments object, error). Arguments that are not a JSON object are an error for the model."""
    if isinstance(raw, dict):
        return raw, None
    if raw in (None, ""):
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return {}, f"arguments are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return {}, "arguments must be a JSON object"
    return value, None


def _call(tool: Tool, ctx: ToolContext, arguments: dict):
    try:
        return tool.func(ctx, arguments), None
    except ToolError as exc:
        return None, str(exc)
    except Exception as exc:
        logger.warning("tool %s raised %s", tool.name, exc, exc_info=True)
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


async def _run(tool: Tool, ctx: ToolContext, arguments: dict):
    try:
        return await tool.run(ctx, arguments)
    except ToolError as exc:
        return None, str(exc)
    except Exception as exc:
        logger.warning("tool %s raised %s", tool.name, exc, exc_info=True)
        return None, f"{type(exc).__name__}: {exc}"


async def run_calls(calls: list[dict], tools: dict[str, Tool], ctx: ToolContext, on_done, executor) -> None:
    """calls: [{id, name, arguments, argument_error}]. Tools run concurrently on `executor` threads (those with
    a coroutine, `run`, as tasks on the loop), each bounded by its time limit. `await on_done(call, result,
    error, duration_ms)` runs as each call finishes, in completion order. Cancelling the caller abandons the
    calls still running (set `ctx.cancelled` so that they can see it; tasks are cancelled).
    Each call's context carries its id as `idempotency_key`."""
    loop = asyncio.get_running_loop()
    pending: dict[asyncio.Future, tuple[dict, float, float]] = {}
    try:
        for call in calls:
            tool = tools.get(call["name"])
            if call.get("argument_error"):
                await on_done(call, None, call["argument_error"], 0)
            elif tool is None:
                await on_done(call, None, f"unknown tool: {call['name']}", 0)
            else:
                call_ctx = dataclasses.replace(ctx, idempotency_key=call["id"])
                if tool.run is not None:
                    future = asyncio.ensure_future(_run(tool, call_ctx, call["arguments"]))
                else:
                    future = loop.run_in_executor(executor, _call, tool, call_ctx, call["arguments"])
                limit = tool.timeout_seconds or settings.TOOL_TIMEOUT_SECONDS
                pending[future] = (call, time.monotonic(), limit)
        while pending:
            now = time.monotonic()
            next_deadline = min(started + limit for _, started, limit in pending.values())
            done, _ = await asyncio.wait(
                list(pending), timeout=max(0.0, next_deadline - now), return_when=asyncio.FIRST_COMPLETED
            )
            for future in done:
                call, started, _limit = pending.pop(future)
                result, error = future.result()
                await on_done(call, result, error, int((time.monotonic() - started) * 1000))
            now = time.monotonic()
            for future, (call, started, limit) in list(pending.items()):
                if now - started >= limit:
                    pending.pop(future)
                    future.cancel()  # a task stops here; a thread cannot be stopped and is abandoned
                    await on_done(call, None, f"tool timed out after {limit:g} s", int((now - started) * 1000))
    finally:
        for future in pending:
            future.cancel()
