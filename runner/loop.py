"""One turn of the agentic loop, step by step, as an asyncio task of the worker's runtime.

Each step is committed before the next starts (the LLM response as an assistant message, each tool
result as a tool_result message), so a turn whose worker died resumes from the log: history is
rebuilt from stored messages and unanswered tool calls are run before the next LLM call.
Only the holder of the turn's lease writes (sessions.turns); the runtime renews the lease.
Waiting on the model holds no thread and no database connection: database steps run on the
runtime's database threads (`await self.rt.db(...)`), the LLM stream on the event loop.
"""

import asyncio
import logging
import random

from django.conf import settings
from django.db import transaction

from everruns.ids import uuid7
from runner import history, llm, toolexec
from runner.errors import TurnError, TurnErrorCode
from runner.resolution import resolve
from runner.tools import registry
from runner.tools.base import ToolContext
from sessions import live, turns
from sessions.log import SessionGone, append_event, append_message
from sessions.models import Message, Session, Turn

logger = logging.getLogger(__name__)


class TurnRunner:
    def __init__(self, rt, turn_id, owner: str):
        self.rt, self.turn_id, self.owner = rt, turn_id, owner
        self.session_id = None

    # --- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        if not await self.rt.db(turns.turn_claim, self.turn_id, self.owner):
            return
        self.rt.held(self.turn_id, self.owner)
        try:
            self.session_id = await self.rt.db(_session_of, self.turn_id)
            await self._loop()
        except (turns.LeaseLost, SessionGone):
            logger.info("turn %s stopped: lease lost or session deleted", self.turn_id)
        except TurnError as exc:  # the model is unavailable, or the LLM call failed for good
            await self._fail(exc.code, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("turn %s crashed", self.turn_id)
            await self._fail(TurnErrorCode.INTERNAL_ERROR, "The turn failed on an internal error")
        finally:
            self.rt.released(self.turn_id)

    async def _loop(self) -> None:
        while True:
            state = await self.rt.db(self._read_state)
            if state["unanswered"]:
                await self._run_tools([_call_from_part(p) for p in state["unanswered"]], state["tools"])
                continue
            if state["iterations"] >= state["limit"]:
                await self._fail(
                    TurnErrorCode.MAX_ITERATIONS, f"The turn reached its limit of {state['limit']} LLM calls"
                )
                return
            model = state["model"]
            iteration = state["iterations"] + 1
            await self._step(type="llm.started", data={"iteration": iteration, "model": model.display})
            message_id, result = await self._call_llm(
                model=model,
                messages=state["messages"],
                tools=[t.openai_schema() for t in state["tools"].values()] or None,
                reasoning_effort=state["reasoning_effort"],
            )
            calls = await self.rt.db(self._store_response, message_id, iteration, model.display, result)
            if calls:
                await self._run_tools(calls, state["tools"])
                continue
            done = await self.rt.db(
                turns.turn_complete,
                turn_id=self.turn_id,
                session_id=self.session_id,
                owner=self.owner,
                last_seen=state["last_seen"],
            )
            if done:
                return

    def _read_state(self) -> dict:
        """Everything the next step needs, read in one go on a database thread."""
        session = Session.objects.select_related("agent").filter(pk=self.session_id).first()
        if session is None:
            raise SessionGone(str(self.session_id))
        agent = session.agent
        prompt_extra, tools = registry.for_agent(agent.capabilities or [])
        messages = list(Message.objects.filter(session_id=self.session_id).order_by("sequence"))
        state = {
            "tools": {t.name: t for t in tools},
            "unanswered": history.unanswered_tool_calls(messages),
            "last_seen": messages[-1].sequence if messages else 0,
        }
        if state["unanswered"]:
            return state
        turn = Turn.objects.filter(pk=self.turn_id).values("iterations").first()
        if turn is None:
            raise turns.LeaseLost(str(self.turn_id))
        controls = _latest_controls(messages)
        system_prompt = "\n\n".join(p for p in (prompt_extra, agent.system_prompt) if p)
        state.update(
            iterations=turn["iterations"],
            limit=controls.get("max_iterations") or agent.max_iterations or settings.TURN_MAX_ITERATIONS,
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
        with the answer's."""
        attempt = 0
        while True:
            message_id = uuid7()
            try:
                result = await llm.stream_completion(
                    model=model,
                    messages=messages,
                    tools=tools,
                    on_delta=lambda text, mid=message_id: live.publish_delta(
                        self.session_id, turn_id=self.turn_id, message_id=mid, delta=text
                    ),
                    timeout=settings.LLM_TIMEOUT_SECONDS,
                    reasoning_effort=reasoning_effort,
                )
                return message_id, result
            except llm.LlmError as exc:
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

    def _append_guarded(self, *, type: str, data: dict) -> None:
        with transaction.atomic():
            turns.turn_guard(self.turn_id, self.owner)
            append_event(session_id=self.session_id, turn_id=self.turn_id, type=type, data=data)

    async def _step(self, *, type: str, data: dict) -> None:
        await self.rt.db(self._append_guarded, type=type, data=data)

    def _store_response(self, message_id, iteration: int, model: str, result: llm.LlmResult) -> list[dict]:
        content, calls = [], []
        if result.text:
            content.append({"type": "text", "text": result.text})
        for tc in result.tool_calls:
            arguments, error = toolexec.parse_arguments(tc["arguments"])
            part = {
                "type": "tool_call",
                "id": tc["id"] or f"call_{uuid7().hex[:16]}",
                "name": tc["name"],
                "arguments": arguments,
            }
            if error:
                part["argument_error"] = error
            content.append(part)
            calls.append(_call_from_part(part))
        usage = {**result.usage, "cost_usd": result.cost_usd}
        with transaction.atomic():
            turns.turn_guard(self.turn_id, self.owner)
            append_event(
                session_id=self.session_id,
                turn_id=self.turn_id,
                type="llm.completed",
                data={
                    "iteration": iteration,
                    "model": model,
                    "usage": result.usage,
                    "cost_usd": result.cost_usd,
                    "duration_ms": result.duration_ms,
                    "finish_reason": result.finish_reason,
                },
            )
            append_message(
                session_id=self.session_id,
                turn_id=self.turn_id,
                role=Message.Role.ASSISTANT,
                content=content,
                metadata={"model": model, "usage": usage, "finish_reason": result.finish_reason},
                message_id=message_id,
            )
            turns.turn_count_usage(
                turn_id=self.turn_id, session_id=self.session_id, usage=result.usage, cost_usd=result.cost_usd
            )
        return calls

    def _tools_started(self, calls: list[dict]) -> None:
        """Every `tool.started` of one response in one transaction."""
        with transaction.atomic():
            turns.turn_guard(self.turn_id, self.owner)
            for call in calls:
                data = {"tool_call_id": call["id"], "name": call["name"], "arguments": call["arguments"]}
                append_event(session_id=self.session_id, turn_id=self.turn_id, type="tool.started", data=data)

    def _store_tool_result(self, call: dict, result, error, duration_ms: int) -> None:
        part = {
            "type": "tool_result",
            "tool_call_id": call["id"],
            "name": call["name"],
            "result": result,
            "error": error,
        }
        with transaction.atomic():
            turns.turn_guard(self.turn_id, self.owner)
            append_message(
                session_id=self.session_id, turn_id=self.turn_id, role=Message.Role.TOOL_RESULT, content=[part]
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

    async def _run_tools(self, calls: list[dict], tools: dict) -> None:
        await self.rt.db(self._tools_started, calls)

        async def on_done(call, result, error, duration_ms):
            await self.rt.db(self._store_tool_result, call, result, error, duration_ms)

        ctx = ToolContext(session_id=str(self.session_id), turn_id=str(self.turn_id))
        await toolexec.run_calls(calls, tools, ctx, on_done, self.rt.tool_pool)

    async def _fail(self, code: TurnErrorCode, message: str) -> None:
        self.rt.released(self.turn_id)
        await self.rt.db(
            turns.turn_fail,
            turn_id=self.turn_id,
            session_id=self.session_id,
            owner=self.owner,
            code=code,
            message=message,
        )


def _session_of(turn_id):
    session_id = Turn.objects.filter(pk=turn_id).values_list("session_id", flat=True).first()
    if session_id is None:
        raise turns.LeaseLost(str(turn_id))
    return session_id


def _latest_controls(messages: list[Message]) -> dict:
    for m in reversed(messages):
        if m.role == Message.Role.USER:
            return m.controls or {}
    return {}


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
