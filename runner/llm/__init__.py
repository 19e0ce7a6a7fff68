"""The LLM adapter: the only package that imports litellm (worker side only; ~5 s and ~200 MB), on first use.

`library` imports and configures litellm once (and holds the one llmsim instance); `transport` hooks the guarded
transport into the HTTP clients litellm builds; `completion` makes one streamed call; `errors` sorts what a call
raises into turn error codes; `usage` is what a call used and cost; `tokens` counts tokens the way a model does
(for compaction); `sim` is llmsim, the simulated provider (a litellm custom provider, so it imports litellm at
the top: only `library` imports it, on first use). Callers use this package's names (`from runner import llm`;
`llm.stream_completion(...)`), never a submodule's private ones. Importing the package imports no litellm.
"""

from runner.llm.completion import LlmResult, stream_completion
from runner.llm.errors import LlmError
from runner.llm.library import warm_up
from runner.llm.tokens import context_window, token_counter, tools_tokens
from runner.llm.usage import estimate_usage

__all__ = [
    "LlmError",
    "LlmResult",
    "context_window",
    "estimate_usage",
    "stream_completion",
    "token_counter",
    "tools_tokens",
    "warm_up",
]
