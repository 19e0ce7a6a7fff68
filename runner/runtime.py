"""The worker's turn runtime: many turns as asyncio tasks on one event-loop thread per process.

A turn that waits on its model holds no thread and no database connection. Its database steps are
short transactions on a small pool of threads, each keeping one persistent connection
(`WORKER_DB_THREADS`); tools run on their own bounded pool (`WORKER_TOOL_THREADS`, runner.toolexec.ToolPool:
a call stuck past its time limit is shed, up to `WORKER_TOOL_STUCK_MAX`). One heartbeat
per process renews the leases of all its turns in one statement, reads their stored cancel and
interrupt requests in another (a lost wake-up's backstop), and cancels the task of a turn whose lease
it lost (deleted, taken over), which abandons its in-flight LLM call at once.
"""

import asyncio
import functools
import logging
import os
import socket
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import uvloop
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from everruns.core.ids import uuid7
from runner.loop import TurnRunner
from runner.toolexec import ToolPool
from sessions import turns
from sessions.log import publishing_together
from sessions.turns import control

logger = logging.getLogger(__name__)


def _db_call(fn, *args, **kwargs):
    try:
        with publishing_together():
            return fn(*args, **kwargs)
    except Exception:
        # A connection broken by a database restart must not fail this thread's next step too.
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        raise


def _renew(owner: str, ids: list) -> tuple[set, dict]:
    """One renewal and the stored signals of these turns, once more on a fresh connection if the
    database dropped this one (a restart)."""
    try:
        return turns.leases_renew(owner, ids), turns.turn_signals(ids)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("heartbeat of turns %s lost its connection (%s); renewing on a new one", ids, exc)
        connection.close()
        return turns.leases_renew(owner, ids), turns.turn_signals(ids)


def _on_this_thread(barrier: threading.Barrier, fn) -> None:
    barrier.wait(10)  # every thread holds one task until all have theirs: each runs fn exactly once
    fn()


class Runtime:
    def __init__(self, *, db_threads: int, tool_threads: int, tool_stuck_max: int, max_turns: int):
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid7().hex[-8:]}"
        self.db_threads = db_threads
        self.db_pool = ThreadPoolExecutor(db_threads, thread_name_prefix="turn-db")
        self.tool_pool = ToolPool(threads=tool_threads, stuck_max=tool_stuck_max)
        # Counting tokens (usage estimates, compaction's measures) is our own CPU work, not a tool call: a thread
        # pool of its own, so it never waits behind stuck tools nor counts as one when a time limit abandons it.
        self.count_pool = ThreadPoolExecutor(2, thread_name_prefix="turn-count")
        # The heartbeat has a thread and a connection of its own, so a slow step never delays a renewal.
        self.beat_pool = ThreadPoolExecutor(1, thread_name_prefix="turn-heartbeat")
        self.slots = threading.BoundedSemaphore(max_turns)
        self.tasks: dict[uuid.UUID, asyncio.Task] = {}
        self.leases: dict[uuid.UUID, str] = {}  # claimed turns -> their owner
        self.runners: dict[uuid.UUID, TurnRunner] = {}  # claimed turns -> their runner, for signals
        self.sweeping = False
        self.loop = uvloop.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run_loop, args=(ready,), name="turn-runtime", daemon=True)
        self.thread.start()
        ready.wait()

    def _run_loop(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.create_task(self._heartbeat())
        self.control_task = self.loop.create_task(control.listen(self._on_control))
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    # --- from any thread ----------------------------------------------------------------------
    def submit(self, turn_id, owner: str | None = None) -> Future:
        """Run the turn here. Blocks while `WORKER_MAX_TURNS` turns run (backpressure on the broker);
        the future resolves when this process is done with the turn."""
        self.slots.acquire()
        future = asyncio.run_coroutine_threadsafe(self._run(uuid.UUID(str(turn_id)), owner or self.owner), self.loop)
        future.add_done_callback(lambda _: self.slots.release())
        return future

    def on_each_db_thread(self, fn) -> None:
        """Run fn once on every database thread (to close or instrument its connection)."""
        barrier = threading.Barrier(self.db_threads)
        for future in [self.db_pool.submit(_on_this_thread, barrier, fn) for _ in range(self.db_threads)]:
            future.result()

    def close_connections(self) -> None:
        """Close the database threads' connections (before a test database is dropped)."""
        self.on_each_db_thread(lambda: connection.close())  # `connection` is per thread: look it up there
        self.beat_pool.submit(lambda: connection.close()).result()

    # --- on the loop --------------------------------------------------------------------------
    async def db(self, fn, *args, **kwargs):
        """Run a synchronous database step on a database thread."""
        return await self.loop.run_in_executor(self.db_pool, functools.partial(_db_call, fn, *args, **kwargs))

    async def _run(self, turn_id: uuid.UUID, owner: str) -> None:
        if turn_id in self.tasks:
            return  # delivered twice while it runs here
        self.tasks[turn_id] = asyncio.current_task()
        try:
            await TurnRunner(self, turn_id, owner).run()
        except asyncio.CancelledError:
            logger.info("turn %s stopped: lease lost", turn_id)
        finally:
            self.tasks.pop(turn_id, None)
            self.leases.pop(turn_id, None)

    def start_sweeper(self) -> None:
        """Re-queue stuck turns every TURN_SWEEP_SECONDS (see sessions.turns.turns_requeue_stuck)."""
        if settings.TURN_SWEEP_SECONDS > 0 and not self.sweeping:
            self.sweeping = True
            asyncio.run_coroutine_threadsafe(self._sweep(), self.loop)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(settings.TURN_SWEEP_SECONDS)
            try:
                await self.db(turns.turns_requeue_stuck)
            except Exception:
                logger.warning("sweep failed", exc_info=True)

    def held(self, turn_id: uuid.UUID, owner: str, runner: TurnRunner) -> None:
        """The turn was claimed: renew its lease from now on, and pass it its signals."""
        self.leases[turn_id] = owner
        self.runners[turn_id] = runner

    def released(self, turn_id: uuid.UUID) -> None:
        self.leases.pop(turn_id, None)
        self.runners.pop(turn_id, None)

    def _on_control(self, message: dict) -> None:
        """A cancel or interrupt wake-up (sessions.turns.control), from any thread."""
        try:
            turn_id = uuid.UUID(message["turn_id"])
        except (KeyError, ValueError):
            return
        self.loop.call_soon_threadsafe(self._signal, turn_id, message.get("signal"), int(message.get("sequence") or 0))

    def _signal(self, turn_id: uuid.UUID, kind: str, sequence: int) -> None:
        runner = self.runners.get(turn_id)
        if runner is not None:
            runner.signal(kind, sequence)

    async def _heartbeat(self) -> None:
        # Often enough that a deleted session or a lost lease stops an in-flight LLM call quickly.
        interval = min(2.0, max(0.2, settings.TURN_LEASE_SECONDS / 4))
        while True:
            await asyncio.sleep(interval)
            by_owner: dict[str, list] = {}
            for turn_id, owner in list(self.leases.items()):
                by_owner.setdefault(owner, []).append(turn_id)
            for owner, ids in by_owner.items():
                try:
                    held, signals = await self.loop.run_in_executor(self.beat_pool, _renew, owner, ids)
                except Exception as exc:  # the database is away: try again next beat, the lease has slack
                    logger.warning("heartbeat of turns %s failed: %s", ids, exc)
                    continue
                for turn_id, (cancel, sequence) in signals.items():  # a wake-up that did not arrive
                    if cancel:
                        self._signal(turn_id, "cancel", 0)
                    if sequence:
                        self._signal(turn_id, "interrupt", sequence)
                for turn_id in ids:
                    task = self.tasks.get(turn_id)
                    if turn_id not in held and self.leases.get(turn_id) == owner and task is not None:
                        logger.info("turn %s: lease lost (deleted, ended or taken over)", turn_id)
                        self.leases.pop(turn_id, None)
                        task.cancel()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """This process's runtime, started on first use."""
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = Runtime(
                    db_threads=settings.WORKER_DB_THREADS,
                    tool_threads=settings.WORKER_TOOL_THREADS,
                    tool_stuck_max=settings.WORKER_TOOL_STUCK_MAX,
                    max_turns=settings.WORKER_MAX_TURNS,
                )
    return _runtime


def run_turn(turn_id, owner: str | None = None) -> None:
    """Run one turn to its end from synchronous code (tests, tools): submit and wait."""
    runtime().submit(turn_id, owner).result()
