"""The LLM adapter: the only module that imports litellm (worker side only; ~5 s and ~200 MB)."""

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from agents.secrets import redact
from runner.resolution import ResolvedModel

logger = logging.getLogger(__name__)
_litellm = None
_import_lock = threading.Lock()


def _lib():
    """litellm, imported once (a worker warms it up at start; threads wait for one import)."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _import_lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            # litellm costs ~5 s and ~200 MB: imported on first use, in workers only.
            import litellm  # noqa: PLC0415

            from runner.llmsim import LlmSim  # noqa: PLC0415 - subclasses litellm.CustomLLM

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            # We log and account for every call ourselves: skip litellm's per-chunk success logging
            # (a thread-pool task per streamed chunk, for callbacks we do not use).
            litellm.disable_streaming_logging = True
            litellm.custom_provider_map = [{"provider": "llmsim", "custom_handler": LlmSim()}]
            _litellm = litellm
    return _litellm


def warm_up() -> None:
    """Import and configure litellm ahead of the first call (workers do this when they start)."""
    try:
        _lib()
    except Exception:
        logger.warning("litellm warm-up failed", exc_info=True)


class LlmError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.code, self.message, self.transient, self.status = code, message, transient, status
        self.retry_after = retry_after


class Stopped(Exception):
    """The caller asked the stream to stop (the turn was cancelled or lost its lease)."""


@dataclass
class LlmResult:
    text: str
    tool_calls: list[dict]  # [{id, name, arguments (raw JSON string)}]
    finish_reason: str | None
    usage: dict = field(default_factory=dict)
    cost_usd: float | None = None
    duration_ms: int = 0


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None) or {}
    try:
        value = headers.get("retry-after") if hasattr(headers, "get") else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _classify(exc: Exception, api_key: str | None) -> LlmError:
    error = _classify_type(exc)
    error.retry_after = _retry_after(exc)
    if api_key and api_key in error.message:
        error.message = error.message.replace(api_key, "[redacted]")

    error.message = redact(error.message)
    return error


def _connection_failed(exc: BaseException) -> bool:
    """litellm 1.110.2 turns an OpenAI-compatible server that cannot be reached into an
    InternalServerError (status 500, "Connection error."); the cause chain still says why."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (ConnectionError, httpx.ConnectError)):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _classify_type(exc: Exception) -> LlmError:
    lib = _lib()
    text = str(exc)[:500]
    status = getattr(exc, "status_code", None)
    if _connection_failed(exc):
        return LlmError("llm_connection_error", text, transient=True)
    table = [
        (lib.ContextWindowExceededError, "context_window_exceeded", False),
        (lib.AuthenticationError, "llm_authentication_failed", False),
        (lib.PermissionDeniedError, "llm_permission_denied", False),
        (lib.NotFoundError, "llm_model_not_found", False),
        (lib.BadRequestError, "llm_bad_request", False),
        (lib.RateLimitError, "llm_rate_limited", True),
        (lib.Timeout, "llm_timeout", True),
        (lib.APIConnectionError, "llm_connection_error", True),
        (lib.InternalServerError, "llm_provider_error", True),
        (lib.ServiceUnavailableError, "llm_provider_error", True),
    ]
    for cls, code, transient in table:
        if isinstance(exc, cls):
            return LlmError(code, text, transient=transient, status=status)
    if isinstance(status, int):
        # litellm 1.110.2 raises a bare APIError (status_code 403) for an OpenAI-compatible 403.
        code = _BY_STATUS.get(status, "llm_provider_error" if status >= 500 else "llm_error")
        return LlmError(code, text, transient=status >= 500 or status == 429, status=status)
    return LlmError("llm_error", text)


_BY_STATUS = {
    400: "llm_bad_request",
    401: "llm_authentication_failed",
    403: "llm_permission_denied",
    404: "llm_model_not_found",
    429: "llm_rate_limited",
}


def _usage(built) -> dict:
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


def _cost(model: ResolvedModel, built) -> float | None:
    if model.provider_type == "llmsim":
        return 0.0
    try:
        return float(_lib().completion_cost(completion_response=built, model=model.litellm_model))
    except Exception:
        return None  # unknown price: honest null, never a crash


def stream_completion(
    *,
    model: ResolvedModel,
    messages: list[dict],
    tools: list[dict] | None,
    on_delta: Callable[[str], None],
    should_stop: Callable[[], bool],
    timeout: float,
    reasoning_effort: str | None = None,
) -> LlmResult:
    lib = _lib()
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
    try:
        response = lib.completion(**kwargs)
        for chunk in response:
            if should_stop():
                close = getattr(response, "close", None)
                if close:
                    close()
                raise Stopped()
            chunks.append(chunk)
            if chunk.choices:
                delta = chunk.choices[0].delta
                text = getattr(delta, "content", None)
                if text:
                    on_delta(text)
        built = lib.stream_chunk_builder(chunks, messages=messages)
    except (Stopped, LlmError):
        raise
    except Exception as exc:
        raise _classify(exc, model.api_key) from None
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
        usage=_usage(built),
        cost_usd=_cost(model, built),
        duration_ms=int((time.monotonic() - started) * 1000),
    )
