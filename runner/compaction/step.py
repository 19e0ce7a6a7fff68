"""The compaction step of a turn: measure the context before an LLM call, summarise its oldest part with the
turn's model, and store the summary once, as a `context.compacted` event (the turn's runner calls these)."""

import asyncio
import logging
from dataclasses import dataclass

from django.conf import settings

from everruns.core import rows
from runner import llm
from runner.compaction import prompt, select
from runner.errors import TurnError, TurnErrorCode
from runner.resolution import ResolvedModel
from sessions import turns
from sessions.log import append_event
from sessions.models import Event, Session

logger = logging.getLogger(__name__)

# After a provider refused a context, the window is taken to be this share of that context (our count).
OVERFLOW_SHARE = 0.9


@dataclass
class Measured:
    """What `plan` decided, with what it was measured by (the window it used, the counter)."""

    plan: select.Plan
    window: int | None
    count: select.Counter | None


def unbounded(model: ResolvedModel, *, cap: int | None, force: str | None) -> bool:
    """A model with no window to keep to (llmsim without `context_window`, the default): nothing to measure, so
    the call needs no hop to a thread (the bench's turns are these)."""
    return force is None and cap is None and model.provider_type == "llmsim" and not model.context_window


def measure(
    model: ResolvedModel,
    context: select.Context,
    tools: list[dict] | None,
    *,
    cap: int | None = None,
    force: str | None = None,
    compacted_already: bool = False,
) -> Measured:
    """The plan for the next call (blocking: litellm's tokenizer; run it off the event loop). `cap`: an input
    size the provider refused (our count), which bounds the window from then on."""
    window = llm.context_window(model)
    if cap is not None:
        window = min(window, cap) if window else cap
    if window is None and force is None:
        return Measured(select.Plan(fitted=select.Fitted(context.messages(), 0)), None, None)
    count = llm.token_counter(model)
    tools_tokens = llm.tools_tokens(model, tools)
    messages = context.messages()
    if force is not None:
        size = select.tokens_of(messages, count) + tools_tokens
        if force == "overflow":  # the provider's window is below what it refused (our count of it)
            window = min(window or size, max(1, int(size * OVERFLOW_SHARE)))
        elif window is None:  # compacting on request, window unknown: the context so far stands in for it
            window = size + 1
    else:
        # No tokenizer needed when there are fewer characters than the budget has tokens (a token is a
        # character or more): most calls of most sessions.
        characters = sum(len(str(m.get("content") or "")) + len(str(m.get("tool_calls") or "")) for m in messages)
        if characters + tools_tokens <= select.budget_of(window, settings.COMPACTION_THRESHOLD):
            return Measured(select.Plan(fitted=select.Fitted(messages, 0)), window, count)
    try:
        plan = select.plan(
            context,
            count,
            window=window,
            threshold=settings.COMPACTION_THRESHOLD,
            tools_tokens=tools_tokens,
            force=force,
            compacted_already=compacted_already,
        )
    except select.TooLarge as exc:
        raise TurnError(
            TurnErrorCode.CONTEXT_WINDOW_EXCEEDED,
            f"The system prompt and the latest message alone take {exc.tokens} tokens, more than the model's "
            f"context window of {exc.window}",
            details={"tokens": exc.tokens, "context_window": exc.window},
        ) from None
    return Measured(plan, window, count)


@dataclass
class Summary:
    text: str
    usage: dict
    cost_usd: float | None
    calls: int


async def summarise(
    *, model: ResolvedModel, previous: str | None, units: tuple[select.Unit, ...], window: int, count, call
) -> Summary:
    """The summary of `units` (after the `previous` one), written by `model`. A part too long for one call is
    summarised in pieces, each summary folded into the next call. `call(messages)` makes one LLM call (with the
    turn's retries) and returns an llm.LlmResult."""
    system = {"role": "system", "content": prompt.summary_prompt(select.summary_words(window))}
    room = max(
        100,
        select.budget_of(window, settings.COMPACTION_THRESHOLD) - count(system) - int(window * select.SUMMARY_SHARE),
    )
    summary, usage, cost, calls = previous, {"input_tokens": 0, "output_tokens": 0}, 0.0, 0
    if not units:  # compacting on request with nothing new since the last summary: that summary stands
        return Summary(previous or "", usage, cost, calls)
    for group in _pieces(units, previous, room, window, count):
        text = prompt.transcript(summary, [m for unit in group for m in unit.messages])
        request = {"role": "user", "content": text}
        size = count(request)
        if size > room:  # one message longer than a call can take: its head
            request["content"] = select.shorten(text, max(200, int(len(text) * room / size * 0.9)), prompt.TRIMMED)
        result = await call([system, request])
        calls += 1
        summary = result.text.strip() or summary
        for key in usage:
            usage[key] += int(result.usage.get(key, 0))
        cost = None if cost is None or result.cost_usd is None else cost + result.cost_usd
    return Summary(summary or "", usage, cost, calls)


def _pieces(units, previous: str | None, room: int, window: int, count) -> list[list[select.Unit]]:
    """`units` in consecutive groups whose transcript fits `room` with the summary so far (which may grow to the
    size the prompt asks for, or be as long as `previous` already is)."""
    reserve = max(int(window * select.SUMMARY_SHARE), count({"role": "user", "content": previous}) if previous else 0)
    groups, current, used = [], [], reserve
    for unit in units:
        size = select.tokens_of(unit.messages, count)
        if current and used + size > room:
            groups.append(current)
            current, used = [], reserve
        current.append(unit)
        used += size
    if current or not groups:
        groups.append(current)
    return groups


def store(
    *, turn_id, session_id, owner: str, event_id, data: dict, cost_usd: float | None, retry: bool = False
) -> None:
    """Store the compaction: its event, the session's pointer to it (what later calls start from) and its usage
    on the turn and the session, in one guarded transaction. `event_id` is chosen up front: a retry after a
    commit that went through finds it and stores nothing twice."""
    if retry and Event.objects.filter(pk=event_id).exists():
        return
    with turns.turn_step(turn_id, owner):
        event = append_event(
            session_id=session_id, turn_id=turn_id, type="context.compacted", data=data, event_id=event_id
        )
        pointer = {
            "summary": data["summary"],
            "through_sequence": data["through_sequence"],
            "sequence": event.sequence,
            "turn_id": str(turn_id),
        }
        rows.update(Session, session_id, compaction=pointer)
        turns.turn_count_compaction(turn_id=turn_id, session_id=session_id, usage=data["usage"], cost_usd=cost_usd)


def event_data(
    *,
    summary: Summary,
    plan: select.Plan,
    context: select.Context,
    model: str,
    reason: str,
    count,
    tools_tokens: int,
    previous_through: int,
) -> dict:
    """`context.compacted`'s data: the summary, what it covers, the context's size before and after (our count)."""
    k = len(plan.summarise)
    after = (
        select.compacted(context, k, summary.text)
        if k
        else select.Context(context.system, summary.text, context.pinned, context.units)
    )
    through = plan.through_sequence if k else previous_through
    return {
        "summary": summary.text,
        "through_sequence": through,
        "tokens_before": plan.tokens_before,
        "tokens_after": select.tokens_of(after.messages(), count) + tools_tokens,
        "model": model,
        "reason": reason,
        "usage": {**summary.usage, "cost_usd": summary.cost_usd, "calls": summary.calls},
    }


async def off_loop(pool, fn, *args, **kwargs):
    """`fn` on `pool` (tokenizing a long context takes a while: not on the event loop, which runs every turn)."""
    return await asyncio.get_running_loop().run_in_executor(pool, lambda: fn(*args, **kwargs))
