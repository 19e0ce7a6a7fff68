"""The steps a turn stores: each one transaction under the turn's lease (sessions.turns.turn_step), run on a
database thread of the worker's runtime. A step that may be retried after a database blip chooses its row ids up
front and, given `retry`, first looks whether the attempt that failed committed after all."""

from dataclasses import dataclass

from everruns.core.ids import uuid7
from runner import llm, toolexec
from sessions import turns
from sessions.log import append_event, append_message
from sessions.models import Message


@dataclass(frozen=True)
class TurnRef:
    """The turn a step writes to, and the lease holder writing it."""

    turn_id: object
    session_id: object
    owner: str


def append_guarded(turn: TurnRef, *, type: str, data: dict) -> None:
    with turns.turn_step(turn.turn_id, turn.owner):
        append_event(session_id=turn.session_id, turn_id=turn.turn_id, type=type, data=data)


def store_interrupted(turn: TurnRef, message_id, text: str, usage: dict, *, model: str | None) -> None:
    """An interrupted call: its partial text, marked, and its estimated usage counted (it is an LLM call of the
    turn, toward max_iterations and the budgets)."""
    with turns.turn_step(turn.turn_id, turn.owner):
        turns.turn_count_abandoned(turn_id=turn.turn_id, session_id=turn.session_id, usage=usage)
        if text:
            append_message(
                session_id=turn.session_id,
                turn_id=turn.turn_id,
                role=Message.Role.ASSISTANT,
                content=[{"type": "text", "text": storable(text)}],
                metadata={"model": model, "interrupted": True, "usage": usage},
                message_id=message_id,
            )


def store_response(
    turn: TurnRef,
    message_id,
    iteration: int,
    model: str,
    result: llm.LlmResult,
    *,
    used_call_ids: set[str],
    unstored_calls: int,
    answered_sequence: int,
    retry=None,
) -> list[dict]:
    """An LLM response: `llm.completed`, the assistant message and the turn's usage, in one transaction; returns
    its tool calls. `used_call_ids` (the session's) gains the new calls' ids. `unstored_calls`: calls made for this
    step and never stored (a worker died, an interrupt), paid for too: counted again as estimates."""
    if retry and (stored := Message.objects.filter(pk=message_id).first()) is not None:
        return [call_from_part(p) for p in stored.content if p.get("type") == "tool_call"]
    content, calls = [], []
    if result.text:
        content.append({"type": "text", "text": storable(result.text)})
    for tc in result.tool_calls:
        arguments, error = toolexec.parse_arguments(tc["arguments"])
        # Results and approvals are matched by call id: one the session has seen (some servers number their
        # calls call_0, call_1, ... in every response) gets an id of its own.
        call_id = tc["id"]
        if not call_id or call_id in used_call_ids:
            call_id = f"call_{uuid7().hex[:16]}"
        used_call_ids.add(call_id)
        part = {"type": "tool_call", "id": call_id, "name": storable(tc["name"]), "arguments": storable(arguments)}
        if error:
            part["argument_error"] = error
        content.append(part)
        calls.append(call_from_part(part))
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
    if unstored_calls:
        estimate = {k: int(result.usage.get(k, 0)) * unstored_calls for k in ("input_tokens", "output_tokens")}
        estimate_cost = None if result.cost_usd is None else result.cost_usd * unstored_calls
        data["unstored_calls"] = unstored_calls
        data["unstored_usage"] = {**estimate, "cost_usd": estimate_cost, "estimated": True}
        counted = {k: int(result.usage.get(k, 0)) + estimate[k] for k in estimate}
        cost = None if result.cost_usd is None else result.cost_usd + estimate_cost
    with turns.turn_step(turn.turn_id, turn.owner):
        append_event(session_id=turn.session_id, turn_id=turn.turn_id, type="llm.completed", data=data)
        append_message(
            session_id=turn.session_id,
            turn_id=turn.turn_id,
            role=Message.Role.ASSISTANT,
            content=content,
            metadata={"model": model, "usage": usage, "finish_reason": result.finish_reason},
            message_id=message_id,
        )
        turns.turn_count_usage(
            turn_id=turn.turn_id,
            session_id=turn.session_id,
            usage=counted,
            cost_usd=cost,
            answered_sequence=answered_sequence,
        )
    return calls


def tools_started(turn: TurnRef, calls: list[dict]) -> None:
    """Every `tool.started` of one response in one transaction."""
    with turns.turn_step(turn.turn_id, turn.owner):
        for call in calls:
            data = {"tool_call_id": call["id"], "name": call["name"], "arguments": call["arguments"]}
            append_event(session_id=turn.session_id, turn_id=turn.turn_id, type="tool.started", data=data)


def store_tool_result(turn: TurnRef, call: dict, result, error, duration_ms: int, message_id, retry=None) -> None:
    """A tool's result: the tool_result message and `tool.completed`, in one transaction."""
    if retry and Message.objects.filter(pk=message_id).exists():
        return
    result, error = storable(result), storable(error)
    part = {"type": "tool_result", "tool_call_id": call["id"], "name": call["name"], "result": result, "error": error}
    with turns.turn_step(turn.turn_id, turn.owner):
        append_message(
            session_id=turn.session_id,
            turn_id=turn.turn_id,
            role=Message.Role.TOOL_RESULT,
            content=[part],
            message_id=message_id,
        )
        append_event(
            session_id=turn.session_id,
            turn_id=turn.turn_id,
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


def call_from_part(part: dict) -> dict:
    return {
        "id": part["id"],
        "name": part["name"],
        "arguments": part.get("arguments") or {},
        "argument_error": part.get("argument_error"),
    }
