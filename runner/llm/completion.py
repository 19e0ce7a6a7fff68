"""One streamed completion: the adapter's call of litellm (and of llmsim, directly), its deadline, and what it
returns."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.errors import TurnErrorCode
from runner.llm import library
from runner.llm.errors import LlmError, classify
from runner.llm.usage import reported_cost, reported_usage
from runner.resolution import ResolvedModel

logger = logging.getLogger(__name__)


@dataclass
class LlmResult:
    text: str
    tool_calls: list[dict]  # [{id, name, arguments (raw JSON string)}]
    finish_reason: str | None
    usage: dict = field(default_factory=dict)
    cost_usd: float | None = None
    duration_ms: int = 0


async def stream_completion(
    *,
    model: ResolvedModel,
    messages: list[dict],
    tools: list[dict] | None,
    on_delta: Callable[[str], None],
    timeout: float,
    reasoning_effort: str | None = None,
) -> LlmResult:
    """One streamed completion. It waits without a thread: cancelling the calling task abandons the
    stream at once (the HTTP response is closed by the cancellation)."""
    if model.provider_type == "llmsim":
        return await _simulated(model=model, messages=messages, tools=tools, on_delta=on_delta, timeout=timeout)
    lib = await library.lib_async()
    kwargs = {
        "model": model.litellm_model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "timeout": float(model.settings.get("timeout") or timeout),
        # Retries are ours (visible as llm.retrying events), never the client library's.
        "max_retries": 0,
        "num_retries": 0,
    }
    if tools:
        kwargs["tools"] = tools
    if model.api_base:
        kwargs["api_base"] = model.api_base
    if model.api_key:
        kwargs["api_key"] = model.api_key
    if model.provider_type == "llmsim":
        kwargs["llmsim"] = model.settings
    if reasoning_effort:
        kwargs["reasoning_effort"] = reasoning_effort
        kwargs["drop_params"] = True
    started = time.monotonic()
    chunks = []
    response = None
    # The client's timeout bounds each wait for bytes; this bounds the whole call, however slowly
    # the provider trickles them.
    deadline = asyncio.timeout(kwargs["timeout"])
    try:
        async with deadline:
            response = await lib.acompletion(**kwargs)
            async for chunk in response:
                chunks.append(chunk)
                if chunk.choices:
                    delta = chunk.choices[0].delta
                    text = getattr(delta, "content", None)
                    if text:
                        on_delta(text)
        built = lib.stream_chunk_builder(chunks, messages=messages)
    except asyncio.CancelledError:
        await _close(response)
        raise
    except TimeoutError:
        if not deadline.expired():
            raise classify(TimeoutError("timed out"), model.api_key) from None
        await _close(response)
        message = f"The LLM call took longer than its limit of {kwargs['timeout']:g} s"
        raise LlmError(TurnErrorCode.LLM_TIMEOUT, message, transient=True) from None
    except LlmError:
        raise
    except Exception as exc:
        raise classify(exc, model.api_key) from None
    choice = built.choices[0] if built and built.choices else None
    message = choice.message if choice else None
    tool_calls = [
        {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments or ""}
        for tc in (getattr(message, "tool_calls", None) or [])
    ]
    return LlmResult(
        text=(getattr(message, "content", None) or ""),
        tool_calls=tool_calls,
        finish_reason=getattr(choice, "finish_reason", None),
        usage=reported_usage(built),
        cost_usd=reported_cost(model, built),
        duration_ms=int((time.monotonic() - started) * 1000),
    )


async def _close(response) -> None:
    """Close an abandoned stream's HTTP response, so the provider stops generating."""
    for name in ("aclose", "close"):
        close = getattr(response, name, None) or getattr(getattr(response, "completion_stream", None), name, None)
        if close is None:
            continue
        try:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            logger.debug("closing an abandoned stream failed", exc_info=True)
        return


async def _simulated(*, model: ResolvedModel, messages: list[dict], tools, on_delta, timeout: float) -> LlmResult:
    """llmsim is our own simulator, so it is called directly rather than through litellm's custom-provider
    machinery, which spends ~30 ms of CPU per call (measured: README, Performance) on a reply computed in
    microseconds. It streams the same chunks, with the same usage, as through litellm."""
    await library.lib_async()  # llmsim subclasses litellm.CustomLLM: the import is the same as for any other provider
    started = time.monotonic()
    try:
        settings = {**model.settings, "context_window": model.context_window}
        latency, gap, chunks = library.simulator().script(
            model.litellm_model, messages, {"tools": tools or [], "llmsim": settings}
        )
    except Exception as exc:  # the model named "error" (HTTP 500), or an input over its context window
        error = classify(exc, model.api_key)
        if error.code == TurnErrorCode.LLM_PROVIDER_ERROR:
            # Our own simulator's words, not a provider's body: shown as they are.
            error = LlmError(error.code, str(exc), transient=True, status=error.status)
        raise error from None
    limit = float(model.settings.get("timeout") or timeout)
    text, calls, finish_reason, usage = [], [], None, {}
    try:
        async with asyncio.timeout(limit):
            if latency:
                await asyncio.sleep(latency)
            for chunk in chunks:
                if chunk["text"]:
                    if gap:
                        await asyncio.sleep(gap)
                    text.append(chunk["text"])
                    on_delta(chunk["text"])
                if chunk["tool_use"]:
                    function = chunk["tool_use"]["function"]
                    calls.append(
                        {"id": chunk["tool_use"]["id"], "name": function["name"], "arguments": function["arguments"]}
                    )
                if chunk["is_finished"]:
                    finish_reason, usage = chunk["finish_reason"], chunk["usage"] or {}
    except TimeoutError:
        message = f"The LLM call took longer than its limit of {limit:g} s"
        raise LlmError(TurnErrorCode.LLM_TIMEOUT, message, transient=True) from None
    input_tokens, output_tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    # A price of its own (`usd_per_million_tokens`, default 0) lets budgets be tried without a vendor.
    price = float(model.settings.get("usd_per_million_tokens") or 0)
    return LlmResult(
        text="".join(text),
        tool_calls=calls,
        finish_reason=finish_reason,
        usage={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
        },
        cost_usd=(input_tokens + output_tokens) * price / 1_000_000,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
