"""One turn of the agentic loop, step by step.

Each step is committed before the next starts (the LLM response as an assistant message, each tool
result as a tool_result message), so a turn whose worker died resumes from the log: history is
rebuilt from stored messages and unanswered tool calls are run before the next LLM call.
Only the holder of the turn's lease writes; it renews the lease with a heartbeat.
"""

import logging
import random
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, FloatField, Value
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from everruns.ids import uuid7
from runner import history, llm, toolexec
from runner.errors import TurnError, TurnErrorCode
from runner.resolution import resolve
from runner.tools import registry
from runner.tools.base import ToolContext
from sessions import live
from sessions.log import SessionGone, append_event, append_message
from sessions.models import Message, Session, Turn
from sessions.services import set_session_status

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker owns the turn now, or it was cancelled: stop without writing."""


def lease_seconds() -> float:
    return settings.TURN_LEASE_SECONDS


def lease_expiry():
    """Now + the lease, on the database's clock (so workers on skewed machines agree)."""
    return ExpressionWrapper(Now() + timedelta(seconds=lease_seconds()), output_field=DateTimeField())


def claim(turn_id, owner: str) -> bool:
    with transaction.atomic():
        turn = Turn.objects.select_for_update().filter(pk=turn_id).first()
        if turn is None or turn.status not in Turn.ACTIVE:
            return False
        alive = Turn.objects.filter(pk=turn_id, lease_expires_at__gt=Now()).exists()
        if turn.status == Turn.Status.RUNNING and turn.lease_owner not in ("", owner) and alive:
            return False
        Turn.objects.filter(pk=turn_id).update(
            status=Turn.Status.RUNNING,
            lease_owner=owner,
            lease_expires_at=lease_expiry(),
            started_at=turn.started_at or timezone.now(),
        )
        if turn.started_at is None:
            append_event(
                session_id=turn.session_id,
                turn_id=turn.id,
                type="turn.started",
                data={"input_message_ids": turn.input_message_ids},
            )
        else:
            logger.info("turn %s resumed by %s", turn_id, owner)
    return True


class Heartbeat(threading.Thread):
    def __init__(self, turn_id, owner: str):
        super().__init__(name=f"heartbeat-{turn_id}", daemon=True)
        self.turn_id, self.owner = turn_id, owner
        self.stopping = threading.Event()
        self.lost = threading.Event()

    def run(self):
        # Often enough that a deleted session or a lost lease stops an in-flight LLM call quickly.
        interval = min(2.0, max(0.2, lease_seconds() / 4))
        try:
            while not self.stopping.wait(interval):
                try:
                    held = Turn.objects.filter(
                        pk=self.turn_id, lease_owner=self.owner, status=Turn.Status.RUNNING
                    ).update(lease_expires_at=lease_expiry())
                except Exception as exc:  # the database blinked: try again next beat, the lease has slack
                    logger.warning("heartbeat of turn %s failed: %s", self.turn_id, exc)
                    connection.close()
                    continue
                if not held:
                    logger.info("turn %s: lease lost (cancelled, deleted or taken over)", self.turn_id)
                    self.lost.set()
                    return
        finally:
            connection.close()


def run_turn(turn_id, owner: str) -> None:
    if not claim(turn_id, owner):
        return
    TurnRunner(turn_id, owner).run()


class TurnRunner:
    def __init__(self, turn_id, owner: str):
        self.turn_id, self.owner = turn_id, owner
        self.turn = Turn.objects.get(pk=turn_id)
        self.session_id = self.turn.session_id
        self.heartbeat = Heartbeat(turn_id, owner)

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        self.heartbeat.start()
        try:
            self._loop()
        except (LeaseLost, llm.Stopped, SessionGone):
            logger.info("turn %s stopped: lease lost, cancelled or session deleted", self.turn_id)
        except TurnError as exc:  # the model is unavailable, or the LLM call failed for good
            self._fail(exc.code, exc.message)
        except Exception:
            logger.exception("turn %s crashed", self.turn_id)
            self._fail(TurnErrorCode.INTERNAL_ERROR, "The turn failed on an internal error")
        finally:
            self.heartbeat.stopping.set()
            connection.close()

    def _loop(self) -> None:
        while True:
            session = Session.objects.select_related("agent").filter(pk=self.session_id).first()
            if session is None:
                raise SessionGone(str(self.session_id))
            agent = session.agent
            prompt_extra, tools = registry.for_agent(agent.capabilities or [])
            self.tools = {t.name: t for t in tools}
            messages = list(Message.objects.filter(session_id=self.session_id).order_by("sequence"))
            unanswered = history.unanswered_tool_calls(messages)
            if unanswered:
                self._run_tools([self._call_from_part(p) for p in unanswered])
                continue
            turn = Turn.objects.get(pk=self.turn_id)
            controls = self._latest_controls(messages)
            limit = controls.get("max_iterations") or agent.max_iterations or settings.TURN_MAX_ITERATIONS
            if turn.iterations >= limit:
                self._fail(TurnErrorCode.MAX_ITERATIONS, f"The turn reached its limit of {limit} LLM calls")
                return
            model = resolve(
                controls_model_id=controls.get("model_id"),
                session_model_id=session.model_id,
                agent_model_id=agent.default_model_id,
            )
            system_prompt = "\n\n".join(p for p in (prompt_extra, agent.system_prompt) if p)
            last_seen = messages[-1].sequence if messages else 0
            iteration = turn.iterations + 1
            self._step(type="llm.started", data={"iteration": iteration, "model": model.display})
            message_id, result = self._call_llm(
                model=model,
                messages=history.build(system_prompt, messages),
                tools=[t.openai_schema() for t in tools] or None,
                reasoning_effort=(controls.get("reasoning") or {}).get("effort"),
            )
            calls = self._store_response(message_id, iteration, model.display, result)
            if calls:
                self._run_tools(calls)
                continue
            if self._complete(last_seen):
                return

    # --- steps ----------------------------------------------------------------------------------
    def _call_llm(self, *, model, messages, tools, reasoning_effort):
        """One LLM call, retried on transient errors with exponential backoff and full jitter.
        Each attempt streams under its own message id, so deltas of a failed attempt never mix
        with the answer's."""
        attempt = 0
        while True:
            message_id = uuid7()
            try:
                result = llm.stream_completion(
                    model=model,
                    messages=messages,
                    tools=tools,
                    on_delta=lambda text, mid=message_id: live.publish_delta(
                        self.session_id, turn_id=self.turn_id, message_id=mid, delta=text
                    ),
                    should_stop=self._should_stop,
                    timeout=settings.LLM_TIMEOUT_SECONDS,
                    reasoning_effort=reasoning_effort,
                )
                return message_id, result
            except llm.LlmError as exc:
                attempt += 1
                if not exc.transient or attempt > settings.LLM_MAX_RETRIES:
                    raise
                delay_ms = retry_delay_ms(attempt, exc.retry_after)
                self._step(
                    type="llm.retrying",
                    data={
                        "attempt": attempt,
                        "delay_ms": delay_ms,
                        "error": {"code": str(exc.code), "message": exc.message},
                    },
                )
                if self.heartbeat.lost.wait(delay_ms / 1000):
                    raise llm.Stopped() from None

    def _should_stop(self) -> bool:
        return self.heartbeat.lost.is_set()

    def _guard(self) -> None:
        """Inside a transaction: lock the turn and make sure we still own it."""
        held = (
            Turn.objects.select_for_update()
            .filter(pk=self.turn_id, lease_owner=self.owner, status=Turn.Status.RUNNING)
            .exists()
        )
        if not held:
            raise LeaseLost(str(self.turn_id))

    def _step(self, *, type: str, data: dict) -> None:
        with transaction.atomic():
            self._guard()
            append_event(session_id=self.session_id, turn_id=self.turn_id, type=type, data=data)

    @staticmethod
    def _latest_controls(messages: list[Message]) -> dict:
        for m in reversed(messages):
            if m.role == Message.Role.USER:
                return m.controls or {}
        return {}

    @staticmethod
    def _call_from_part(part: dict) -> dict:
        return {
            "id": part["id"],
            "name": part["name"],
            "arguments": part.get("arguments") or {},
            "argument_error": part.get("argument_error"),
        }

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
            calls.append(self._call_from_part(part))
        usage = {**result.usage, "cost_usd": result.cost_usd}
        with transaction.atomic():
            self._guard()
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
            cost = result.cost_usd or 0.0
            counters = {
                "input_tokens": F("input_tokens") + result.usage.get("input_tokens", 0),
                "output_tokens": F("output_tokens") + result.usage.get("output_tokens", 0),
            }
            Turn.objects.filter(pk=self.turn_id).update(
                iterations=F("iterations") + 1, **counters, cost_usd=_add_cost("cost_usd", cost)
            )
            Session.objects.filter(pk=self.session_id).update(**counters, cost_usd=_add_cost("cost_usd", cost))
        return calls

    def _run_tools(self, calls: list[dict]) -> None:
        for call in calls:
            self._step(
                type="tool.started",
                data={"tool_call_id": call["id"], "name": call["name"], "arguments": call["arguments"]},
            )

        def on_done(call, result, error, duration_ms):
            part = {
                "type": "tool_result",
                "tool_call_id": call["id"],
                "name": call["name"],
                "result": result,
                "error": error,
            }
            with transaction.atomic():
                self._guard()
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

        ctx = ToolContext(session_id=str(self.session_id), turn_id=str(self.turn_id))
        toolexec.run_calls(calls, self.tools, ctx, on_done, self._should_stop)

    def _complete(self, last_seen: int) -> bool:
        """End the turn unless a user message arrived since the last LLM call (then go on)."""
        with transaction.atomic():
            self._guard()
            Session.objects.select_for_update().filter(pk=self.session_id).first()
            if Message.objects.filter(
                session_id=self.session_id, role=Message.Role.USER, sequence__gt=last_seen
            ).exists():
                return False
            turn = Turn.objects.get(pk=self.turn_id)
            Turn.objects.filter(pk=self.turn_id).update(
                status=Turn.Status.COMPLETED, finished_at=timezone.now(), lease_owner=""
            )
            usage = {"input_tokens": turn.input_tokens, "output_tokens": turn.output_tokens, "cost_usd": turn.cost_usd}
            append_event(
                session_id=self.session_id,
                turn_id=self.turn_id,
                type="turn.completed",
                data={"iterations": turn.iterations, "usage": usage},
            )
            set_session_status(
                session_id=self.session_id, status=Session.Status.PENDING, turn_id=self.turn_id, active_turn=None
            )
        return True

    def _fail(self, code: TurnErrorCode, message: str) -> None:
        error = {"code": str(code), "message": message}
        try:
            with transaction.atomic():
                failed = Turn.objects.filter(
                    pk=self.turn_id, lease_owner=self.owner, status=Turn.Status.RUNNING
                ).update(status=Turn.Status.FAILED, error=error, finished_at=timezone.now(), lease_owner="")
                if not failed:
                    return
                append_event(
                    session_id=self.session_id, turn_id=self.turn_id, type="turn.failed", data={"error": error}
                )
                set_session_status(
                    session_id=self.session_id,
                    status=Session.Status.FAILED,
                    error=error,
                    turn_id=self.turn_id,
                    active_turn=None,
                )
        except SessionGone:
            pass


def retry_delay_ms(attempt: int, retry_after: float | None = None) -> int:
    """Exponential backoff with full jitter, at least the provider's Retry-After, at most the cap."""
    ceiling = min(settings.LLM_RETRY_MAX_MS, settings.LLM_RETRY_BASE_MS * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after:
        delay = max(delay, retry_after * 1000)
    return int(min(delay, settings.LLM_RETRY_MAX_MS))


def _add_cost(field: str, cost: float):

    return Coalesce(F(field), Value(0.0), output_field=FloatField()) + cost
