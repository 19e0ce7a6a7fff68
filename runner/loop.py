"""One turn of the agentic loop, step by step, as an asyncio task of the worker's runtime.

Each step is committed before the next starts (the LLM response as an assistant message, each tool
result as a tool_result message), so a turn whose worker died resumes from the log: history is
rebuilt from stored messages and unanswered tool calls are run before the next LLM call.
Only the holder of the turn's lease writes (sessions.turns); the runtime renews the lease.
Waiting on the model holds no thread and no database connection: database steps run on the
runtime's database threads (`await self.rt.db(...)`), the LLM stream on the event loop.
"""

import asyncio
import functools
import json
import logging
import random
import threading

from django.conf import settings
from django.db import InterfaceError, OperationalError

from everruns import telemetry
from everruns.core.ids import uuid7
from runner import llm, steps, toolexec
from runner.compaction import step as compaction_step
from runner.compaction.turn import TurnCompaction
from runner.errors import TurnError, TurnErrorCode
from runner.state import TurnState, read_state
from runner.steps import call_from_part
from runner.tools.base import ToolContext
from sessions import turns
from sessions.log import SessionGone
from sessions.streams import live

logger = logging.getLogger(__name__)


INTERRUPTED_TOOL_ERROR = "interrupted: the worker stopped while this tool ran; it may or may not have taken effect"
ESTIMATE_SECONDS = 2.0  # the longest an abandoned call's usage estimate may take
CLIENT_TOOL_UNANSWERED = "no result: a new message came before the client answered this call"
# A step that meets a broken database connection (a restart, a failover) is not the turn's fault:
# the runner waits and goes on from the log; after this long without the database it lets go of the
# turn (the sweeper hands it to a worker once the database is back).
DB_RETRY_DELAYS = (0.5, 1, 2, 4, 8, 8, 8)
DB_ERRORS = (OperationalError, InterfaceError)


class TurnRunner:
    def __init__(self, rt, turn_id, owner: str):
        self.rt, self.turn_id, self.owner = rt, turn_id, owner
        self.session_id = None
        self.task: asyncio.Task | None = None
        self.cancelling = False  # a cancel arrived: the task is being cancelled to carry it out
        self.llm_task: asyncio.Task | None = None  # the in-flight LLM call, which an interrupt abandons
        self.interrupted = False
        self.interrupt_sequence = 0  # the newest interrupting message this runner knows of
        self.seen_sequence = 0  # the newest message the current LLM call was given
        self.partial: list[str] | None = None  # text streamed so far by the in-flight call
        self.partial_message_id = None  # the id its deltas carry: the stored partial message keeps it
        self.llm_request = None  # (model, messages, tools) of the call in flight: an abandoned call's estimate
        self.model_name: str | None = None
        self.unstored_calls: int | None = None  # LLM calls made and never stored (crash, interrupt)
        self.tool_cancel = threading.Event()
        self.used_call_ids: set[str] = set()  # the tool call ids the session has: a new call's must differ
        self.parked = False  # the turn waits for an approval: this worker is done with it
        self.ref: steps.TurnRef | None = None  # what the stored steps write to (set once the turn is claimed)
        self.compaction = TurnCompaction(
            pool=rt.count_pool, store=self._store_compaction, summary_call=self._summary_call
        )

    # --- signals (on the loop) ---------------------------------------------------------------------
    def signal(self, kind: str, sequence: int = 0) -> None:
        """A stored cancel or interrupt reached this worker (control wake-up or heartbeat)."""
        if kind == "cancel":
            if not self.cancelling and self.task is not None:
                self.cancelling = True
                self.tool_cancel.set()
                self.task.cancel()
        elif kind == "interrupt" and sequence > self.interrupt_sequence:
            self.interrupt_sequence = sequence
            if self.llm_task is not None and sequence > self.seen_sequence and not self.llm_task.done():
                self.interrupted = True
                self.llm_task.cancel()

    # --- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            claim = await self.rt.db(turns.turn_claim, self.turn_id, self.owner)
        except DB_ERRORS as exc:  # the database is away: the turn stays queued, the sweeper hands it on
            logger.warning("turn %s: could not be claimed (%s)", self.turn_id, exc)
            return
        if claim is None:
            return
        self.session_id = claim.session_id
        self.ref = steps.TurnRef(turn_id=self.turn_id, session_id=self.session_id, owner=self.owner)
        if not claim.resumed:
            self.unstored_calls = 0
        self.rt.held(self.turn_id, self.owner, self)
        try:
            await self._loop_through_outages()
        except turns.CancelRequested:
            await self._cancel()
        except (turns.LeaseLost, SessionGone):
            logger.info("turn %s stopped: lease lost or session deleted", self.turn_id)
        except TurnError as exc:  # the model is unavailable, the LLM call failed for good, a budget
            await self._fail(exc.code, exc.message, exc.details)
        except asyncio.CancelledError:
            if not self.cancelling:
                raise  # the lease was lost: stop without writing
            self.task.uncancel()
            await self._cancel()
        except Exception:
            logger.exception("turn %s crashed", self.turn_id)
            await self._fail(TurnErrorCode.INTERNAL_ERROR, "The turn failed on an internal error")
        finally:
            self.rt.released(self.turn_id)

    async def _loop_through_outages(self) -> None:
        for delay in (*DB_RETRY_DELAYS, None):
            try:
                return await self._loop()
            except DB_ERRORS as exc:
                if delay is None:
                    logger.warning(
                        "turn %s: the database is still away (%s); letting the sweeper resume it", self.turn_id, exc
                    )
                    raise turns.LeaseLost(str(self.turn_id)) from exc
                logger.warning(
                    "turn %s: database step failed (%s); going on from the log in %g s", self.turn_id, exc, delay
                )
                await asyncio.sleep(delay)

    async def _loop(self) -> None:
        while True:
            state = await self.rt.db(self._read_state)
            if state.unanswered:
                await self._run_tools([call_from_part(p) for p in state.unanswered], state, resumed=True)
                if self.parked:
                    return
                continue
            if not state.final:
                if state.iterations >= state.limit:
                    raise TurnError(
                        TurnErrorCode.MAX_ITERATIONS, f"The turn reached its limit of {state.limit} LLM calls"
                    )
                state.check_budgets()
                model = state.model
                self.model_name = model.display
                if state.compact_requested:  # POST .../compact: this turn compacts, then answers what came
                    await self.compaction.compact(state, force="requested")
                    continue
                messages = await self.compaction.fitted_context(state)
                if messages is None:  # a compaction was stored: read the state again, from it
                    continue
                iteration = state.iterations + 1
                await self._step(type="llm.started", data={"iteration": iteration, "model": model.display})
                self.seen_sequence = state.last_seen
                try:
                    message_id, result = await self._call_llm(
                        model=model,
                        messages=messages,
                        tools=state.offered or None,
                        reasoning_effort=state.reasoning_effort,
                    )
                except llm.LlmError as exc:
                    if not self.compaction.refused(exc):
                        raise
                    # The provider counts more than we do: compact once, within what it refused, and call again.
                    logger.info("turn %s: the provider refused the context (%s); compacting", self.turn_id, exc.message)
                    continue
                if result is None:  # interrupted: the partial text is stored, call again with the new message
                    continue
                self.compaction.answered()
                calls = await self._store_response_once(message_id, iteration, model.display, result)
                client_calls = [c for c in calls if c["name"] in state.client_tools]
                server_calls = [c for c in calls if c not in client_calls]
                if server_calls:
                    await self._run_tools(server_calls, state, resumed=False)
                    if self.parked:
                        return
                if calls and not client_calls:
                    continue
                if client_calls:
                    state.client_calls = client_calls
            done = await self.rt.db(
                turns.turn_complete,
                turn_id=self.turn_id,
                session_id=self.session_id,
                owner=self.owner,
                last_seen=state.last_seen,
                client_calls=[call_from_part(c) for c in state.client_calls],
            )
            if done:
                return

    def _read_state(self) -> TurnState:
        """Everything the next step needs, read in one go on a database thread (runner/state.py)."""
        state = read_state(session_id=self.session_id, turn_id=self.turn_id, count_unstored=self.unstored_calls is None)
        self.used_call_ids = state.used_call_ids
        if state.unstored_calls is not None:  # once per runner: calls a dead worker made and never stored
            self.unstored_calls = state.unstored_calls
        return state

    # --- compaction (runner/compaction) ---------------------------------------------------------
    async def _store_compaction(self, data: dict, cost_usd) -> None:
        store = functools.partial(
            compaction_step.store, turn_id=self.turn_id, session_id=self.session_id, owner=self.owner
        )

        def once(event_id, data, cost_usd, retry=None):
            store(event_id=event_id, data=data, cost_usd=cost_usd, retry=bool(retry))

        await self._once(once, uuid7(), data, cost_usd)

    async def _summary_call(self, model, messages: list[dict]) -> llm.LlmResult:
        """One summary call, retried as the turn's calls are; it streams to nobody (it is no answer)."""
        attempt = 0
        while True:
            try:
                return await llm.stream_completion(
                    model=model, messages=messages, tools=None, on_delta=_ignore, timeout=settings.LLM_TIMEOUT_SECONDS
                )
            except llm.LlmError as exc:
                attempt += 1
                await self._retry_or_raise(exc, attempt)

    async def _retry_or_raise(self, exc: "llm.LlmError", attempt: int) -> None:
        """After a failed LLM call: wait out the backoff (an `llm.retrying` says so) if it may be tried again."""
        if not exc.transient or attempt > settings.LLM_MAX_RETRIES:
            raise exc
        delay_ms = retry_delay_ms(attempt, exc.retry_after)
        await self._step(
            type="llm.retrying",
            data={"attempt": attempt, "delay_ms": delay_ms, "error": {"code": str(exc.code), "message": exc.message}},
        )
        await asyncio.sleep(delay_ms / 1000)

    # --- steps ----------------------------------------------------------------------------------
    async def _call_llm(self, *, model, messages, tools, reasoning_effort):
        """One LLM call, retried on transient errors with exponential backoff and full jitter.
        Each attempt streams under its own message id, so deltas of a failed attempt never mix
        with the answer's. (None, None) when an interrupt abandoned it (its partial text stored)."""
        attempt = 0
        while True:
            if self.interrupt_sequence > self.seen_sequence:  # the interrupting message came after the read
                return None, None
            message_id = uuid7()
            partial = self.partial = []
            self.llm_request = (model, messages, tools)
            self.partial_message_id = message_id

            def on_delta(text, mid=message_id, parts=partial):
                parts.append(text)
                live.publish_delta(self.session_id, turn_id=self.turn_id, message_id=mid, delta=text)

            self.llm_task = asyncio.ensure_future(
                llm.stream_completion(
                    model=model,
                    messages=messages,
                    tools=tools,
                    on_delta=on_delta,
                    timeout=settings.LLM_TIMEOUT_SECONDS,
                    reasoning_effort=reasoning_effort,
                )
            )
            try:
                result = await self.llm_task
            except asyncio.CancelledError:
                if not self.interrupted or self.cancelling or self.task.cancelling():
                    raise
                self.interrupted = False
                text = "".join(partial)
                # From here the call is no longer in flight: a cancel arriving now must not count it again.
                self.partial = self.partial_message_id = None
                usage = await self._estimate(text)
                await self.rt.db(steps.store_interrupted, self.ref, message_id, text, usage, model=self.model_name)
                return None, None
            except llm.LlmError as exc:
                self.partial = self.partial_message_id = None  # a failed attempt's text is no answer
                telemetry.llm_attempt_failed(model=model.display)
                attempt += 1
                await self._retry_or_raise(exc, attempt)
                continue
            finally:
                self.llm_task = None
            self.partial = None
            return message_id, result

    async def _step(self, *, type: str, data: dict) -> None:
        await self.rt.db(steps.append_guarded, self.ref, type=type, data=data)

    async def _once(self, fn, *args):
        """A storing step retried through a database blip. fn(*args, retry=True) must first look
        whether the attempt that failed committed after all (its row ids are chosen up front)."""
        retry = False
        for delay in (*DB_RETRY_DELAYS, None):
            try:
                return await self.rt.db(fn, *args, retry=retry)
            except DB_ERRORS:
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                retry = True

    async def _estimate(self, text: str) -> dict | None:
        """The estimated usage of the call in flight, abandoned with `text` streamed (off the event loop:
        counting tokens of a long conversation takes a while)."""
        if self.llm_request is None:
            return None
        model, messages, tools = self.llm_request
        estimate = asyncio.get_running_loop().run_in_executor(
            self.rt.count_pool, llm.estimate_usage, model, messages, tools, text
        )
        try:
            # A tokenizer litellm must fetch first, or one that fails, must not hold up a cancel or an interrupt.
            return await asyncio.wait_for(estimate, ESTIMATE_SECONDS)
        except Exception as exc:
            logger.warning("turn %s: usage estimate failed (%s); about four characters a token", self.turn_id, exc)
            size = len(json.dumps(messages, default=str))
            return {"input_tokens": size // 4, "output_tokens": len(text) // 4, "cost_usd": None, "estimated": True}

    async def _store_response_once(self, message_id, iteration: int, model: str, result: llm.LlmResult) -> list:
        store = functools.partial(
            steps.store_response,
            used_call_ids=self.used_call_ids,
            unstored_calls=self.unstored_calls or 0,
            answered_sequence=self.seen_sequence,
        )
        calls = await self._once(store, self.ref, message_id, iteration, model, result)
        self.unstored_calls = 0
        return calls

    async def _tool_done(self, call, result, error, duration_ms) -> None:
        await self._once(steps.store_tool_result, self.ref, call, result, error, duration_ms, uuid7())

    async def _run_tools(self, calls: list[dict], state: TurnState, *, resumed: bool) -> None:
        """Run the calls of one response: those that need approval are asked for (and the turn parks
        once the others are done), denied ones get the denial, and on a resumed turn a call of a tool
        that is not idempotent and had started gets the interrupted error instead of a second run."""
        self.parked = False
        tools, approvals = state.tools, state.approvals
        started = state.started if resumed else set()
        ready, ask, settled = [], [], []
        for call in calls:
            tool = tools.get(call["name"])
            decision = approvals.get(call["id"], {}).get("status")
            if tool is None and call["name"] in state.client_tools:
                settled.append((call, CLIENT_TOOL_UNANSWERED))
            elif tool is not None and call["id"] in started and not tool.idempotent:
                settled.append((call, INTERRUPTED_TOOL_ERROR))
            elif tool is None or call.get("argument_error") or decision == "approved":
                ready.append(call)
            elif decision == "denied":
                reason = approvals[call["id"]].get("reason")
                settled.append((call, f"denied: {reason}" if reason else "denied"))
            elif decision == "pending" or _policy(state.policy, call["name"], tool) == "ask":
                ask.append(call)
            else:
                ready.append(call)
        new = [c for c in ask if c["id"] not in approvals]
        if new:
            await self.rt.db(
                turns.approvals_request, turn_id=self.turn_id, session_id=self.session_id, owner=self.owner, calls=new
            )
        for call, error in settled:
            await self._tool_done(call, None, error, 0)
        if ready:
            await self.rt.db(steps.tools_started, self.ref, ready)
            ctx = ToolContext(session_id=str(self.session_id), turn_id=str(self.turn_id), cancelled=self.tool_cancel)
            await toolexec.run_calls(ready, tools, ctx, self._tool_done, self.rt.tool_pool)
        if ask:
            self.parked = await self.rt.db(
                turns.turn_wait, turn_id=self.turn_id, session_id=self.session_id, owner=self.owner
            )

    async def _cancel(self) -> None:
        """Carry out the stored cancel: the in-flight call's text so far is kept, marked cancelled."""
        self.cancelling = True  # a wake-up for this same cancel arriving now must not cancel the task again
        self.tool_cancel.set()
        partial = "".join(self.partial) if self.partial else None
        usage = await self._estimate(partial or "") if self.partial is not None else None
        write = self.rt.db(
            turns.turn_cancel,
            turn_id=self.turn_id,
            session_id=self.session_id,
            owner=self.owner,
            partial_text=partial,
            model=self.model_name,
            message_id=self.partial_message_id,
            usage=usage,
        )
        try:
            await asyncio.shield(write)  # a lost lease cancelling the task now must not drop a write half done
        except (turns.LeaseLost, SessionGone):
            logger.info("turn %s: cancelled, and gone or taken over meanwhile", self.turn_id)

    async def _fail(self, code: TurnErrorCode, message: str, details: dict | None = None) -> None:
        self.rt.released(self.turn_id)
        write = self.rt.db(
            turns.turn_fail,
            turn_id=self.turn_id,
            session_id=self.session_id,
            owner=self.owner,
            code=code,
            message=message,
            details=details,
        )
        await asyncio.shield(write)


def _ignore(text: str) -> None:
    pass


def _policy(policy: dict, name: str, tool) -> str:
    """The agent's tool_policy for the tool, or the tool's own default (an MCP server's `default_policy`)."""
    return policy.get(name) or policy.get("*") or (tool.default_policy if tool else "auto")


def retry_delay_ms(attempt: int, retry_after: float | None = None) -> int:
    """Exponential backoff with full jitter, at least the provider's Retry-After, at most the cap."""
    ceiling = min(settings.LLM_RETRY_MAX_MS, settings.LLM_RETRY_BASE_MS * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after:
        delay = max(delay, retry_after * 1000)
    return int(min(delay, settings.LLM_RETRY_MAX_MS))
