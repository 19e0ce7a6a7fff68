"""What an LLM call used and cost: as its provider reported it, or estimated for a call abandoned mid-stream."""

import json

from runner.llm import library
from runner.resolution import ResolvedModel


def reported_usage(built) -> dict:
    """The usage the provider reported for a completed call (zeros when it reported none)."""
    usage = getattr(built, "usage", None)
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0}
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return {
        "input_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "output_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
        "cached_tokens": int(getattr(prompt_details, "cached_tokens", 0) or 0) if prompt_details else 0,
        "reasoning_tokens": int(getattr(completion_details, "reasoning_tokens", 0) or 0) if completion_details else 0,
    }


def estimate_usage(model: ResolvedModel, messages: list[dict], tools: list[dict] | None, text: str) -> dict:
    """The usage of a call abandoned mid-stream (interrupted, cancelled), which no provider reported: its input
    counted with the model's tokenizer as litellm knows it (llmsim: its own count), its output from the text
    streamed so far. `estimated: true`; cost from the provider's price per token when known."""
    if model.provider_type == "llmsim":
        simulated = library.simulator().count_usage(messages, tools or [], text)
        price = float(model.settings.get("usd_per_million_tokens") or 0)
        cost = (simulated["input_tokens"] + simulated["output_tokens"]) * price / 1_000_000
        return {**simulated, "cost_usd": cost, "estimated": True}
    lib = library.lib()
    try:
        input_tokens = int(lib.token_counter(model=model.litellm_model, messages=messages, tools=tools))
        output_tokens = int(lib.token_counter(model=model.litellm_model, text=text)) if text else 0
    except Exception:  # an unknown tokenizer: about four characters a token
        input_tokens = len(json.dumps(messages)) // 4
        output_tokens = len(text) // 4
    try:
        prompt_cost, completion_cost = lib.cost_per_token(
            model=model.litellm_model, prompt_tokens=input_tokens, completion_tokens=output_tokens
        )
        cost = float(prompt_cost + completion_cost)
    except Exception:
        cost = None  # unknown price: null, as for a completed call
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost, "estimated": True}


def reported_cost(model: ResolvedModel, built) -> float | None:
    """A completed call's cost from litellm's price map (None when it does not know the price)."""
    if model.provider_type == "llmsim":
        return 0.0
    try:
        return float(library.lib().completion_cost(completion_response=built, model=model.litellm_model))
    except Exception:
        return None  # unknown price: honest null, never a crash
