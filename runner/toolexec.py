"""Running the tool calls of one LLM response, concurrently, each bounded in time, on the worker's ToolPool."""

import asyncio
import collections
import dataclasses
import json
import logging
import threading
import time
from concurrent.futures import Executor, Future

from django.conf import settings
from django.db import connection

from runner.tools.base import Tool, ToolContext, ToolError

logger = logging.getLogger(__name__)


class ToolPoolFull(Exception):
    """No thread can take the call: every thread the pool may have is held by a stuck call."""


class _Work(Future):
    """A call on the pool. Cancelling it once it runs abandons it: its thread is counted as stuck."""

    def __init__(self, pool: "ToolPool"):
        super().__init__()
        self.pool = pool

    def cancel(self) -> bool:
        if super().cancel():
            return True  # still queued: it never runs
        self.pool._abandoned(self)
        return False


class ToolPool(Executor):
    """Threads for blocking tool calls, bounded, whose stuck work is counted and shed.

    A thread cannot be stopped, and a tool may ignore its deadline (a parser deep in C code, a read that never
    ends): the runtime then answers the call as a timeout and cancels its future. Such a call is *stuck*: its
    thread no longer counts as one of the `threads` that take new calls, and a replacement may start, up to
    `threads + stuck_max` threads in all. Once every thread the pool may have is held by a stuck call, a new
    call fails at once (ToolPoolFull) instead of waiting behind them. Calls beyond the free threads wait in
    order; one cancelled while it waits (its deadline passed) never runs. Threads are daemons, so a stuck one
    does not keep the worker from exiting; a thread idle for IDLE_SECONDS ends."""

    IDLE_SECONDS = 60.0

    def __init__(self, *, threads: int, stuck_max: int, name: str = "tool"):
        self.threads, self.name = max(1, threads), name
        self.max_threads = self.threads + max(0, stuck_max)
        self._lock = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._live = self._idle = 0
        self._running: set[_Work] = set()
        self._stuck: set[_Work] = set()

    def stats(self) -> dict:
        with self._lock:
            return {"threads": self._live, "idle": self._idle, "stuck": len(self._stuck), "queued": len(self._queue)}

    def submit(self, fn, /, *args, **kwargs) -> Future:
        work = _Work(self)
        with self._lock:
            if self._live == len(self._stuck) and not self._may_start():  # no thread but stuck ones, none to come
                stuck = len(self._stuck)
                logger.warning("tool pool %s: all %d threads are stuck; a call is refused", self.name, stuck)
                work.set_exception(ToolPoolFull(f"no tool thread free: {stuck} calls are stuck past their time limit"))
                return work
            self._queue.append((work, fn, args, kwargs))
            self._start_if_needed()
            self._lock.notify()
        return work

    def _may_start(self) -> bool:
        return self._live - len(self._stuck) < self.threads and self._live < self.max_threads

    def _start_if_needed(self) -> None:
        if self._idle < len(self._queue) and self._may_start():
            self._live += 1
            threading.Thread(target=self._work, name=f"{self.name}-{self._live}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
                if not self._queue:
                    self._lock.wait_for(lambda: self._queue, self.IDLE_SECONDS)
                self._idle -= 1
                if not self._queue:
                    self._live -= 1
                    return
                work, fn, args, kwargs = self._queue.popleft()
                if not work.set_running_or_notify_cancel():
                    continue  # cancelled while it waited
                self._running.add(work)
            try:
                work.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                work.set_exception(exc)
            with self._lock:
                self._running.discard(work)
                if work in self._stuck:
                    self._stuck.discard(work)
                    logger.info("tool pool %s: a stuck call ended (%d stuck)", self.name, len(self._stuck))
                if self._live - len(self._stuck) > self.threads:  # its replacement runs: one thread too many
                    self._live -= 1
                    return

    def _abandoned(self, work: _Work) -> None:
        with self._lock:
            if work in self._running and work not in self._stuck:
                self._stuck.add(work)
                logger.warning("tool pool %s: a call overran its time limit (%d stuck)", self.name, len(self._stuck))
                self._start_if_needed()  # its thread takes no new calls now


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
    """calls: [{id, name, arguments, argument_error}]. Tools run concurrently on `executor` threads (a
    ToolPool; a tool with a coroutine, `run`, as a task on the loop), each bounded by its time limit, counted
    from now (a wait for a thread included). `await on_done(call, result, error, duration_ms)` runs as each call
    finishes, in completion order. Cancelling the caller abandons the calls still running (set `ctx.cancelled`
    so that they can see it; tasks are cancelled).
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
                try:
                    result, error = future.result()
                except ToolPoolFull as exc:
                    result, error = None, str(exc)
                await on_done(call, result, error, int((time.monotonic() - started) * 1000))
            now = time.monotonic()
            for future, (call, started, limit) in list(pending.items()):
                if now - started >= limit:
                    pending.pop(future)
                    # A task stops here; a call still waiting for a thread never runs; a running thread cannot
                    # be stopped: it is counted as stuck (ToolPool).
                    future.cancel()
                    await on_done(call, None, f"tool timed out after {limit:g} s", int((now - started) * 1000))
    finally:
        for future in pending:
            future.cancel()
