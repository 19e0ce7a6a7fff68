"""One turn of the agentic loop, step by step, as an asyncio task of the worker's runtime.

Each step is committed before the next starts (the LLM response as an assistant message, each tool
result as a tool_result message), so a turn whose worker died resumes from the log: history is
rebuilt from stored messages and unanswered tool calls are run before the next LLM call.
Only the holder of the turn's lease writes (sessions.turns); the runtime renews the lease.
Waiting on the model holds no thread and no database connection: database steps run on the
runtime's database threads (`await self.rt.db(...)`), the LLM stream on the event loop.
"""

import asyncio
import json
import logging
import random
import threading

from django.conf import settings
from django.db import InterfaceError, OperationalError

from everruns import telemetry
from everruns.core import rows
from everruns.core.ids import uuid7
from runner import history, llm, toolexec
from runner.errors import TurnError, TurnErrorCode
from runner.resolution import resolve
from runner.tools import registry
from runner.tools.base import ToolContext
from sessions import turns
from sessions.log import SessionGone, append_event, append_message
from sessions.models import Event, Message, Session, Turn
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


TURN_STATE_FIELDS = (
    "iterations",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cancel_requested_at",
    "approvals",
    "answered_sequence",
    "client_tools",
)


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
            if state["unanswered"]:
                await self._run_tools([_call_from_part(p) for p in state["unanswered"]], state, resumed=True)
                if self.parked:
                    return
                continue
            if not state["final"]:
                if state["iterations"] >= state["limit"]:
                    raise TurnError(
                        TurnErrorCode.MAX_ITERATIONS, f"The turn reached its limit of {state['limit']} LLM calls"
                    )
                _check_budgets(state)
                model = state["model"]
                self.model_name = model.display
                iteration = state["iterations"] + 1
                await self._step(type="llm.started", data={"iteration": iteration, "model": model.display})
                self.seen_sequence = state["last_seen"]
                message_id, result = await self._call_llm(
                    model=model,
                    messages=state["messages"],
                    tools=state["offered"] or None,
                    reasoning_effort=state["reasoning_effort"],
                )
                if result is None:  # interrupted: the partial text is stored, call again with the new message
                    continue
                calls = await self._store_response_once(message_id, iteration, model.display, result)
                client_calls = [c for c in calls if c["name"] in state["client_tools"]]
                server_calls = [c for c in calls if c not in client_calls]
                if server_calls:
                    await self._run_tools(server_calls, state, resumed=False)
                    if self.parked:
                        return
                if calls and not client_calls:
                    continue
                if client_calls:
                    state["client_calls"] = client_calls
            done = await self.rt.db(
                turns.turn_complete,
                turn_id=self.turn_id,
                session_id=self.session_id,
                owner=self.owner,
                last_seen=state["last_seen"],
                client_calls=[_call_from_part(c) for c in state["client_calls"]],
            )
            if done:
                return

    def _read_state(self) -> dict:
        """Everything the next step needs, read in one go on a database thread."""
        # Written out (everruns/core/rows.py): every step of every turn reads these; compiling them was a fifth
        # of the worker's CPU (py-spy).
        session = rows.by_pk(Session, self.session_id, related="agent")
        if session is None:
            raise SessionGone(str(self.session_id))
        agent = session.agent
        system_prompt, tools = registry.system_prompt_and_tools(agent)
        messages = rows.fetch(
            Message, '"session_id" = %s', [rows.prep(Message, "session", self.session_id)], tail='ORDER BY "sequence"'
        )
        found = rows.by_pk(Turn, self.turn_id, fields=TURN_STATE_FIELDS)
        turn = {name: getattr(found, name) for name in TURN_STATE_FIELDS} if found else None
        if turn is None:
            raise turns.LeaseLost(str(self.turn_id))
        if turn["cancel_requested_at"] is not None:
            raise turns.CancelRequested(str(self.turn_id))
        last = messages[-1] if messages else None
        self.used_call_ids = history.tool_call_ids(messages)
        server_tools = {t.name: t for t in tools}
        client_tools = [t for t in turn["client_tools"] or [] if t.get("name") not in server_tools]
        unanswered = history.unanswered_tool_calls(messages)
        unseen_message = any(m.role == Message.Role.USER and m.sequence > turn["answered_sequence"] for m in messages)
        # Calls of front-end tools wait for the client's next run, unless a message came first.
        client_names = {t["name"] for t in client_tools}
        client_calls = [] if unseen_message else [p for p in unanswered if p["name"] in client_names]
        if any(p["name"] not in server_tools and p["name"] not in client_names for p in unanswered):
            client_names |= _client_tools_of_the_call(messages)  # an earlier turn's front-end tools
        state = {
            "tools": server_tools,
            "client_tools": client_names,
            "offered": [t.openai_schema() for t in tools] + [{"type": "function", "function": t} for t in client_tools],
            "policy": agent.tool_policy or {},
            "approvals": turn["approvals"] or {},
            "unanswered": [p for p in unanswered if p not in client_calls],
            "client_calls": client_calls,
            "last_seen": last.sequence if last else 0,
            # A resumed turn whose answer is stored already ends without calling the model again, unless
            # a user message came that the answer's call was not given.
            "final": not unseen_message
            and (
                bool(client_calls and not any(p not in client_calls for p in unanswered))
                or bool(
                    last
                    and last.role == Message.Role.ASSISTANT
                    and last.turn_id == self.turn_id
                    and not any(p.get("type") == "tool_call" for p in last.content)
                    and not (last.metadata or {}).get("interrupted")
                )
            ),
        }
        if state["unanswered"]:
            state["started"] = _started_tool_calls(self.session_id, self.turn_id)
            return state
        if self.unstored_calls is None:  # once per runner: calls a dead worker made and never stored
            self.unstored_calls = Event.objects.filter(
                session_id=self.session_id,
                turn_id=self.turn_id,
                type="llm.started",
                data__iteration=turn["iterations"] + 1,
            ).count()
        controls = history.latest_controls(messages)
        state.update(
            iterations=turn["iterations"],
            limit=controls.get("max_iterations") or agent.max_iterations or settings.TURN_MAX_ITERATIONS,
            budgets=_budgets(agent, session, turn),
            model=resolve(
                controls_model_id=controls.get("model_id"),
                session_model_id=session.model_id,
                agent_model_id=agent.default_model_id,
            ),
            messages=history.build(system_prompt, messages),
            reasoning_effort=(controls.get("reasoning") or {}).get("effort"),
        )
        return state

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
                await self.rt.db(self._store_interrupted, message_id, text, usage)
                return None, None
            except llm.LlmError as exc:
                self.partial = self.partial_message_id = None  # a failed attempt's text is no answer
                telemetry.llm_attempt_failed(model=model.display)
                attempt += 1
                if not exc.transient or attempt > settings.LLM_MAX_RETRIES:
                    raise
                delay_ms = retry_delay_ms(attempt, exc.retry_after)
                await self._step(
                    type="llm.retrying",
                    data={
                        "attempt": attempt,
                        "delay_ms": delay_ms,
                        "error": {"code": str(exc.code), "message": exc.message},
                    },
                )
                await asyncio.sleep(delay_ms / 1000)
                continue
            finally:
                self.llm_task = None
            self.partial = None
            return message_id, result

    def _append_guarded(self, *, type: str, data: dict) -> None:
        with turns.turn_step(self.turn_id, self.owner):
            append_event(session_id=self.session_id, turn_id=self.turn_id, type=type, data=data)

    async def _step(self, *, type: str, data: dict) -> None:
        await self.rt.db(self._append_guarded, type=type, data=data)

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

    def _store_interrupted(self, message_id, text: str, usage: dict) -> None:
        """An interrupted call: its partial text, marked, and its estimated usage counted (it is an LLM call of
        the turn, toward max_iterations and the budgets)."""
        with turns.turn_step(self.turn_id, self.owner):
            turns.turn_count_abandoned(turn_id=self.turn_id, session_id=self.session_id, usage=usage)
            if text:
                append_message(
                    session_id=self.session_id,
                    turn_id=self.turn_id,
                    role=Message.Role.ASSISTANT,
                    content=[{"type": "text", "text": storable(text)}],
                    metadata={"model": self.model_name, "interrupted": True, "usage": usage},
                    message_id=message_id,
                )

    async def _estimate(self, text: str) -> dict | None:
        """The estimated usage of the call in flight, abandoned with `text` streamed (off the event loop:
        counting tokens of a long conversation takes a while)."""
        if self.llm_request is None:
            return None
        model, messages, tools = self.llm_request
        estimate = asyncio.get_running_loop().run_in_executor(
            self.rt.tool_pool, llm.estimate_usage, model, messages, tools, text
        )
        try:
            # A tokenizer litellm must fetch first, or one that fails, must not hold up a cancel or an interrupt.
            return await asyncio.wait_for(estimate, ESTIMATE_SECONDS)
        except Exception as exc:
            logger.warning("turn %s: usage estimate failed (%s); about four characters a token", self.turn_id, exc)
            size = len(json.dumps(messages, default=str))
            return {"input_tokens": size // 4, "output_tokens": len(text) // 4, "cost_usd": None, "estimated": True}

    def _store_response(self, message_id, iteration: int, model: str, result: llm.LlmResult, retry=None) -> list:
        if retry and (stored := Message.objects.filter(pk=message_id).first()) is not None:
            self.unstored_calls = 0
            return [_call_from_part(p) for p in stored.content if p.get("type") == "tool_call"]
        content, calls = [], []
        if result.text:
            content.append({"type": "text", "text": storable(result.text)})
        for tc in result.tool_calls:
            arguments, error = toolexec.parse_arguments(tc["arguments"])
            # Results and approvals are matched by call id: one the session has seen (some servers number
            # their calls call_0, call_1, ... in every response) gets an id of its own.
            call_id = tc["id"]
            if not call_id or call_id in self.used_call_ids:
                call_id = f"call_{uuid7().hex[:16]}"
            self.used_call_ids.add(call_id)
            part = {
                "type": "tool_call",
                "id": call_id,
                "name": storable(tc["name"]),
                "arguments": storable(arguments),
            }
            if error:
                part["argument_error"] = error
            content.append(part)
            calls.append(_call_from_part(part))
        usage = {**result.usage, "cost_usd": result.cost_usd}
        data = {
            "iteration": iteration,
            "model": model,
            "usage": result.usage,
            "cost_usd": result.cost_usd,
            "duration_ms": result.duration_ms,
            "finish_reason": result.finish_reason,
        }
        counted, cost = dict(result.usage), result.cost_usd
        unstored = self.unstored_calls or 0
        if unstored:
            # Calls made for this step and never stored (a worker died, an interrupt) were paid for too:
            # counted as this call's usage again for each, marked as an estimate.
            estimate = {k: int(result.usage.get(k, 0)) * unstored for k in ("input_tokens", "output_tokens")}
            estimate_cost = None if result.cost_usd is None else result.cost_usd * unstored
            data["unstored_calls"] = unstored
            data["unstored_usage"] = {**estimate, "cost_usd": estimate_cost, "estimated": True}
            counted = {k: int(result.usage.get(k, 0)) + estimate[k] for k in estimate}
            cost = None if result.cost_usd is None else result.cost_usd + estimate_cost
        with turns.turn_step(self.turn_id, self.owner):
            append_event(session_id=self.session_id, turn_id=self.turn_id, type="llm.completed", data=data)
            append_message(
                session_id=self.session_id,
                turn_id=self.turn_id,
                role=Message.Role.ASSISTANT,
                content=content,
                metadata={"model": model, "usage": usage, "finish_reason": result.finish_reason},
                message_id=message_id,
            )
            turns.turn_count_usage(
                turn_id=self.turn_id,
                session_id=self.session_id,
                usage=counted,
                cost_usd=cost,
                answered_sequence=self.seen_sequence,
            )
        self.unstored_calls = 0
        return calls

    async def _store_response_once(self, message_id, iteration: int, model: str, result: llm.LlmResult) -> list:
        return await self._once(self._store_response, message_id, iteration, model, result)

    def _tools_started(self, calls: list[dict]) -> None:
        """Every `tool.started` of one response in one transaction."""
        with turns.turn_step(self.turn_id, self.owner):
            for call in calls:
                data = {"tool_call_id": call["id"], "name": call["name"], "arguments": call["arguments"]}
                append_event(session_id=self.session_id, turn_id=self.turn_id, type="tool.started", data=data)

    def _store_tool_result(self, call: dict, result, error, duration_ms: int, message_id, retry=None) -> None:
        if retry and Message.objects.filter(pk=message_id).exists():
            return
        result, error = storable(result), storable(error)
        part = {
            "type": "tool_result",
            "tool_call_id": call["id"],
            "name": call["name"],
            "result": result,
            "error": error,
        }
        with turns.turn_step(self.turn_id, self.owner):
            append_message(
                session_id=self.session_id,
                turn_id=self.turn_id,
                role=Message.Role.TOOL_RESULT,
                content=[part],
                message_id=message_id,
            )
            append_event(
                session_id=self.session_id,
                turn_id=self.turn_id,
                type="tool.completed",
                data={
                    "tool_call_id": call["id"],
                    "name": call["name"],
                    "status": "error" if error else "success",
                    "result": result,
                    "error": error,
                    "duration_ms": duration_ms,
                },
            )

    async def _tool_done(self, call, result, error, duration_ms) -> None:
        await self._once(self._store_tool_result, call, result, error, duration_ms, uuid7())

    async def _run_tools(self, calls: list[dict], state: dict, *, resumed: bool) -> None:
        """Run the calls of one response: those that need approval are asked for (and the turn parks
        once the others are done), denied ones get the denial, and on a resumed turn a call of a tool
        that is not idempotent and had started gets the interrupted error instead of a second run."""
        self.parked = False
        tools, approvals = state["tools"], state["approvals"]
        started = state.get("started", set()) if resumed else set()
        ready, ask, settled = [], [], []
        for call in calls:
            tool = tools.get(call["name"])
            decision = approvals.get(call["id"], {}).get("status")
            if tool is None and call["name"] in state["client_tools"]:
                settled.append((call, CLIENT_TOOL_UNANSWERED))
            elif tool is not None and call["id"] in started and not tool.idempotent:
                settled.append((call, INTERRUPTED_TOOL_ERROR))
            elif tool is None or call.get("argument_error") or decision == "approved":
                ready.append(call)
            elif decision == "denied":
                reason = approvals[call["id"]].get("reason")
                settled.append((call, f"denied: {reason}" if reason else "denied"))
            elif decision == "pending" or _policy(state["policy"], call["name"]) == "ask":
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
            await self.rt.db(self._tools_started, ready)
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


def storable(value):
    """`value` with NUL characters replaced (U+FFFD): PostgreSQL's jsonb refuses them, and a tool result or
    model output holding one must not fail the turn."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def _client_tools_of_the_call(messages: list[Message]) -> set[str]:
    """The front-end tool names of the turn that made the last response (its calls are the unanswered ones)."""
    last = next((m for m in reversed(messages) if m.role == Message.Role.ASSISTANT), None)
    if last is None or last.turn_id is None:
        return set()
    tools = Turn.objects.filter(pk=last.turn_id).values_list("client_tools", flat=True).first() or []
    return {t.get("name") for t in tools}


def _policy(policy: dict, name: str) -> str:
    return policy.get(name) or policy.get("*") or "auto"


def _started_tool_calls(session_id, turn_id) -> set:
    """The tool calls of this turn that a worker started (a `tool.started` is stored before a tool runs)."""
    rows = Event.objects.filter(session_id=session_id, turn_id=turn_id, type="tool.started").values_list(
        "data", flat=True
    )
    return {data.get("tool_call_id") for data in rows}


def _budgets(agent, session, turn: dict) -> list[tuple]:
    """(scope, limit name, limit, used) for each budget of the agent (per turn) and the session."""
    agent_limits, session_limits = agent.limits or {}, session.limits or {}
    return [
        (
            "agent",
            "max_tokens_per_turn",
            agent_limits.get("max_tokens_per_turn"),
            turn["input_tokens"] + turn["output_tokens"],
        ),
        ("agent", "max_cost_usd_per_turn", agent_limits.get("max_cost_usd_per_turn"), turn["cost_usd"] or 0.0),
        ("session", "max_tokens", session_limits.get("max_tokens"), session.input_tokens + session.output_tokens),
        ("session", "max_cost_usd", session_limits.get("max_cost_usd"), session.cost_usd or 0.0),
    ]


def _check_budgets(state: dict) -> None:
    """Before an LLM call: a budget used up ends the turn."""
    for scope, name, limit, used in state["budgets"]:
        if limit is not None and used >= limit:
            whose = "turn" if scope == "agent" else "session"
            raise TurnError(
                TurnErrorCode.BUDGET_EXCEEDED,
                f"The {whose} used {used:g} of its {scope} limit {name} ({limit:g})",
                details={"limit": name, "scope": scope, "value": limit, "used": used},
            )


def _call_from_part(part: dict) -> dict:
    return {
        "id": part["id"],
        "name": part["name"],
        "arguments": part.get("arguments") or {},
        "argument_error": part.get("argument_error"),
    }


def retry_delay_ms(attempt: int, retry_after: float | None = None) -> int:
    """Exponential backoff with full jitter, at least the provider's Retry-After, at most the cap."""
    ceiling = min(settings.LLM_RETRY_MAX_MS, settings.LLM_RETRY_BASE_MS * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after:
        delay = max(delay, retry_after * 1000)
    return int(min(delay, settings.LLM_RETRY_MAX_MS))
