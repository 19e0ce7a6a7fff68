"""A turn's compaction across its LLM calls: the runner (runner/loop.py) asks it for the messages of each call,
fitted to the model's window, and tells it when a provider refused a context."""

from runner import llm
from runner.compaction import step
from runner.errors import TurnError, TurnErrorCode


class TurnCompaction:
    """Why the next call compacts first even under the threshold (`force`: "overflow" when the provider refused
    the context, "overflowed" once that compaction is done: refused again, the turn fails), whether this call's
    context was compacted already (once is enough: then it trims), and the input size a provider refused (it
    bounds the window for the rest of the turn).

    `store(event_id, data, cost_usd)` stores a compaction once (awaitable); `summary_call(model, messages)` is one
    summary LLM call, retried as the turn's calls are; `pool` runs the token counting off the event loop."""

    def __init__(self, *, pool, store, summary_call):
        self.pool, self.store, self.summary_call = pool, store, summary_call
        self.force: str | None = None
        self.compacted = False
        self.window_cap: int | None = None
        self.overflow_error: llm.LlmError | None = None  # the provider's refusal: the turn's error if nothing fits

    def refused(self, exc: llm.LlmError) -> bool:
        """After a failed LLM call: True when it was the provider refusing the context for the first time in this
        call (compact once, within what it refused, and call again)."""
        if exc.code != TurnErrorCode.CONTEXT_WINDOW_EXCEEDED or self.force == "overflowed":
            return False
        self.force, self.compacted, self.overflow_error = "overflow", False, exc
        return True

    def answered(self) -> None:
        """The call went through: the next one starts afresh."""
        self.force, self.compacted = None, False

    async def fitted_context(self, state) -> list[dict] | None:
        """The messages of the next LLM call, fitted to the model's window; None when a compaction was stored
        first (the state is to be read again, from it)."""
        force = "overflow" if self.force == "overflow" else None
        if step.unbounded(state.model, cap=self.window_cap, force=force):
            return state.context.messages()
        if force:
            self.force = "overflowed"  # one compaction per refusal: refused again, the turn fails
        try:
            measured = await step.off_loop(
                self.pool,
                step.measure,
                state.model,
                state.context,
                state.offered or None,
                cap=self.window_cap,
                force=force,
                compacted_already=self.compacted,
            )
        except TurnError as exc:
            if force and exc.code == TurnErrorCode.CONTEXT_WINDOW_EXCEEDED and self.overflow_error is not None:
                raise self.overflow_error from None  # nothing to compact: the provider's own words say why
            raise
        if force:
            self.window_cap = measured.window  # the provider's window is below what it refused, for this turn
        if measured.plan.fitted is not None:
            return measured.plan.fitted.messages
        await self.compact(state, force=force, measured=measured)
        return None

    async def compact(self, state, *, force: str | None, measured=None) -> None:
        """The compaction step: the summary, written by the turn's model, stored once with its usage."""
        model, context = state.model, state.context
        tools = state.offered or None
        if measured is None:
            measured = await step.off_loop(
                self.pool, step.measure, model, context, tools, cap=self.window_cap, force=force
            )
        summary = await step.summarise(
            model=model,
            previous=context.summary,
            units=measured.plan.summarise,
            window=measured.window,
            count=measured.count,
            call=lambda messages: self.summary_call(model, messages),
        )
        data = await step.off_loop(
            self.pool,
            step.event_data,
            summary=summary,
            plan=measured.plan,
            context=context,
            model=model.display,
            reason=force or "threshold",
            count=measured.count,
            tools_tokens=llm.tools_tokens(model, tools),
            previous_through=state.compaction_through,
        )
        await self.store(data, summary.cost_usd)
        self.compacted = True
