"""Counting tokens the way a model does, for compaction: its context window, one message's tokens, its tools'."""

import json

from runner.llm import library
from runner.resolution import ResolvedModel


def context_window(model: ResolvedModel) -> int | None:
    """The model's window in input tokens: its own `settings.context_window`, else litellm's model map (None
    when neither knows it: then only a provider's overflow error makes a turn compact)."""
    if model.context_window:
        return model.context_window
    if model.provider_type == "llmsim":
        return None
    try:
        info = library.lib().get_model_info(model=model.litellm_model)
    except Exception:  # a model litellm's map does not have
        return None
    window = info.get("max_input_tokens") or info.get("max_tokens")
    return int(window) if window else None


def token_counter(model: ResolvedModel):
    """A function counting one OpenAI-format message's tokens the way the model does: litellm's tokenizer for
    the model (tiktoken's when litellm has none of its own), llmsim's own count (four characters a token)."""
    if model.provider_type == "llmsim":
        simulator = library.simulator()
        return lambda message: simulator.count_usage([message], [], "")["input_tokens"]
    lib = library.lib()

    def count(message: dict) -> int:
        try:
            return int(lib.token_counter(model=model.litellm_model, messages=[message]))
        except Exception:  # a message litellm's counter cannot read: about four characters a token
            return len(json.dumps(message, default=str)) // 4 + 1

    return count


def tools_tokens(model: ResolvedModel, tools: list[dict] | None) -> int:
    if not tools:
        return 0
    if model.provider_type == "llmsim":
        return library.simulator().count_usage([], tools, "")["input_tokens"]
    return len(json.dumps(tools)) // 4  # litellm counts tools only together with messages
