"""The LLM adapter: the only module that imports litellm (worker side only; ~5 s and ~200 MB)."""

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from django.conf import settings

from agents.secrets import redact
from everruns.core import netguard
from everruns.startup import freeze_loaded_objects
from runner.errors import TurnError, TurnErrorCode
from runner.resolution import ResolvedModel

logger = logging.getLogger(__name__)
_litellm = None
_llmsim = None
_import_lock = threading.Lock()


async def _lib_async():
    """litellm from the event loop: the first import (seconds) waits on a thread, so the loop, its heartbeat
    and every other turn go on meanwhile (a worker's warm-up thread may hold the import lock)."""
    if _litellm is not None:
        return _litellm
    return await asyncio.get_running_loop().run_in_executor(None, _lib)


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
            _guard_connections(litellm)
            _litellm = litellm
            freeze_loaded_objects()  # litellm's ~300,000 objects live as long as the process
    return _litellm


def _guarded_transport(ssl_context=None, ssl_verify=None, shared_session=None, http2=False, cert=None, limits=None):
    """The transport of every async HTTP client litellm builds: each connection goes to a checked address of
    the provider's host (no second DNS lookup to rebind), and a redirect is an error, never followed
    (everruns/core/netguard.py). Same signature as the factory it replaces; `shared_session` is aiohttp's."""
    return netguard.AsyncGuardedTransport(
        lambda: settings.LLM_ALLOWED_HOSTS,
        refuse_redirects=True,
        verify=ssl_context if ssl_context is not None else ssl_verify is not False,
        cert=cert,
        http2=http2,
        limits=limits or netguard.DEFAULT_LIMITS,
    )


def _guard_connections(litellm) -> None:
    """litellm 1.110.2 builds its async clients in one place: AsyncHTTPHandler.create_async_transport makes
    the transport both of the OpenAI SDK's clients (openai/, openai_compatible) and of its own handlers
    (anthropic and the others), which otherwise follow redirects and resolve names themselves. Replace that
    factory, drop the environment-proxy mounts (a proxy resolves names itself, out of the guard's sight) and
    turn off the aiohttp transport (it bypasses httpx's transports). Re-check these names on an upgrade."""
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler  # noqa: PLC0415 - workers only

    litellm.disable_aiohttp_transport = True
    AsyncHTTPHandler.create_async_transport = staticmethod(_guarded_transport)
    AsyncHTTPHandler._create_async_transport = staticmethod(_guarded_transport)
    AsyncHTTPHandler.create_httpx_proxy_mounts = staticmethod(lambda *args, **kwargs: None)


def warm_up() -> None:
    """Import and configure litellm ahead of the first call (workers do this when they start)."""
    try:
        _lib()
    except Exception:
        logger.warning("litellm warm-up failed", exc_info=True)


class LlmError(TurnError):
    def __init__(
        self,
        code: TurnErrorCode,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(code, message)
        self.transient, self.status, self.retry_after = transient, status, retry_after


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
    # The exception's own text may quote the provider's answer (an HTML page, or whatever a server it
    # redirected to said): operators read it in the log, clients only the short message.
    detail = redact(str(exc)[:2000])
    if api_key:
        detail = detail.replace(api_key, "[redacted]")
    logger.warning("LLM call failed (%s): %s", error.code, detail)
    return error


def _in_chain(exc: BaseException, kinds) -> BaseException | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kinds):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _connection_failed(exc: BaseException) -> bool:
    """litellm 1.110.2 turns an OpenAI-compatible server that cannot be reached into an
    InternalServerError (status 500, "Connection error."); the cause chain still says why."""
    return _in_chain(exc, (ConnectionError, httpx.ConnectError)) is not None


# What a client reads in `error.message`: ours, never the provider's text (see _public_message).
_MESSAGES = {
    TurnErrorCode.LLM_PROVIDER_ERROR: "The LLM provider failed",
    TurnErrorCode.LLM_RATE_LIMITED: "The LLM provider is limiting requests",
    TurnErrorCode.LLM_TIMEOUT: "The LLM call timed out",
    TurnErrorCode.LLM_CONNECTION_ERROR: "Could not connect to the LLM provider",
    TurnErrorCode.LLM_AUTHENTICATION_FAILED: "The LLM provider rejected the API key",
    TurnErrorCode.LLM_BAD_REQUEST: "The LLM provider refused the request",
    TurnErrorCode.CONTEXT_WINDOW_EXCEEDED: "The conversation does not fit the model's context window",
    TurnErrorCode.LLM_PERMISSION_DENIED: "The LLM provider denied access",
    TurnErrorCode.LLM_MODEL_NOT_FOUND: "The LLM provider does not know the model",
    TurnErrorCode.LLM_ERROR: "The LLM call failed",
}
_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _provider_error_kind(exc: Exception) -> list[str]:
    """The `type` and `code` of the provider's JSON error (`{"error": {"type", "code"}}`, or at the top
    level), each kept only if it is a short identifier; nothing else of the body."""
    response = getattr(exc, "response", None)
    if not isinstance(response, httpx.Response) or "json" not in response.headers.get("content-type", ""):
        return []
    try:
        body = response.json()
    except Exception:  # not read (a stream), not JSON after all
        return []
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return []
    kinds = [error.get("type"), error.get("code")]
    return [k for k in dict.fromkeys(kinds) if isinstance(k, str) and _TOKEN.fullmatch(k)]


def _public_message(exc: Exception, code: TurnErrorCode, status: int | None) -> str:
    """A short message of ours: what failed, the HTTP status and the provider's error type/code. Never the
    exception's text, which quotes the provider's body (an HTML page, a stack trace, or what an internal
    server a provider redirected to answered)."""
    facts = [f"HTTP {status}"] if isinstance(status, int) else []
    facts += _provider_error_kind(exc)
    if not facts:
        facts = [type(exc).__name__]
    return f"{_MESSAGES[code]} ({', '.join(facts)})"


def _classify_type(exc: Exception) -> LlmError:
    lib = _lib()
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    if refused := _in_chain(exc, netguard.RefusedAddress):
        # Ours (an address or a redirect the guard refused): safe to show, and no retry changes it.
        return LlmError(TurnErrorCode.LLM_CONNECTION_ERROR, f"Could not call the LLM provider: {refused}")
    if _connection_failed(exc):
        code = TurnErrorCode.LLM_CONNECTION_ERROR
        return LlmError(code, _public_message(exc, code, None), transient=True)
    table = [
        (lib.ContextWindowExceededError, TurnErrorCode.CONTEXT_WINDOW_EXCEEDED, False),
        (lib.AuthenticationError, TurnErrorCode.LLM_AUTHENTICATION_FAILED, False),
        (lib.PermissionDeniedError, TurnErrorCode.LLM_PERMISSION_DENIED, False),
        (lib.NotFoundError, TurnErrorCode.LLM_MODEL_NOT_FOUND, False),
        (lib.BadRequestError, TurnErrorCode.LLM_BAD_REQUEST, False),
        (lib.RateLimitError, TurnErrorCode.LLM_RATE_LIMITED, True),
        (lib.Timeout, TurnErrorCode.LLM_TIMEOUT, True),
        (lib.APIConnectionError, TurnErrorCode.LLM_CONNECTION_ERROR, True),
        (lib.InternalServerError, TurnErrorCode.LLM_PROVIDER_ERROR, True),
        (lib.ServiceUnavailableError, TurnErrorCode.LLM_PROVIDER_ERROR, True),
    ]
    for cls, code, transient in table:
        if isinstance(exc, cls):
            return LlmError(code, _public_message(exc, code, status), transient=transient, status=status)
    if status is not None:
        # litellm 1.110.2 raises a bare APIError (status_code 403) for an OpenAI-compatible 403.
        code = _BY_STATUS.get(status, TurnErrorCode.LLM_PROVIDER_ERROR if status >= 500 else TurnErrorCode.LLM_ERROR)
        transient = status >= 500 or status == 429
        return LlmError(code, _public_message(exc, code, status), transient=transient, status=status)
    code = TurnErrorCode.LLM_ERROR
    return LlmError(code, _public_message(exc, code, None))


_BY_STATUS = {
    400: TurnErrorCode.LLM_BAD_REQUEST,
    401: TurnErrorCode.LLM_AUTHENTICATION_FAILED,
    403: TurnErrorCode.LLM_PERMISSION_DENIED,
    404: TurnErrorCode.LLM_MODEL_NOT_FOUND,
    429: TurnErrorCode.LLM_RATE_LIMITED,
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


def estimate_usage(model: ResolvedModel, messages: list[dict], tools: list[dict] | None, text: str) -> dict:
    """The usage of a call abandoned mid-stream (interrupted, cancelled), which no provider reported: its input
    counted with the model's tokenizer as litellm knows it (llmsim: its own count), its output from the text
    streamed so far. `estimated: true`; cost from the provider's price per token when known."""
    if model.provider_type == "llmsim":
        simulated = _simulator().count_usage(messages, tools or [], text)
        price = float(model.settings.get("usd_per_million_tokens") or 0)
        cost = (simulated["input_tokens"] + simulated["output_tokens"]) * price / 1_000_000
        return {**simulated, "cost_usd": cost, "estimated": True}
    lib = _lib()
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


def context_window(model: ResolvedModel) -> int | None:
    """The model's window in input tokens: its own `settings.context_window`, else litellm's model map (None
    when neither knows it: then only a provider's overflow error makes a turn compact)."""
    if model.context_window:
        return model.context_window
    if model.provider_type == "llmsim":
        return None
    try:
        info = _lib().get_model_info(model=model.litellm_model)
    except Exception:  # a model litellm's map does not have
        return None
    window = info.get("max_input_tokens") or info.get("max_tokens")
    return int(window) if window else None


def token_counter(model: ResolvedModel):
    """A function counting one OpenAI-format message's tokens the way the model does: litellm's tokenizer for
    the model (tiktoken's when litellm has none of its own), llmsim's own count (four characters a token)."""
    if model.provider_type == "llmsim":
        simulator = _simulator()
        return lambda message: simulator.count_usage([message], [], "")["input_tokens"]
    lib = _lib()

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
        return _simulator().count_usage([], tools, "")["input_tokens"]
    return len(json.dumps(tools)) // 4  # litellm counts tools only together with messages


def _cost(model: ResolvedModel, built) -> float | None:
    if model.provider_type == "llmsim":
        return 0.0
    try:
        return float(_lib().completion_cost(completion_response=built, model=model.litellm_model))
    except Exception:
        return None  # unknown price: honest null, never a crash


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
    lib = await _lib_async()
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
            raise _classify(TimeoutError("timed out"), model.api_key) from None
        await _close(response)
        message = f"The LLM call took longer than its limit of {kwargs['timeout']:g} s"
        raise LlmError(TurnErrorCode.LLM_TIMEOUT, message, transient=True) from None
    except LlmError:
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
    await _lib_async()  # llmsim subclasses litellm.CustomLLM: the import is the same as for any other provider
    started = time.monotonic()
    try:
        settings = {**model.settings, "context_window": model.context_window}
        latency, gap, chunks = _simulator().script(
            model.litellm_model, messages, {"tools": tools or [], "llmsim": settings}
        )
    except Exception as exc:  # the model named "error" (HTTP 500), or an input over its context window
        error = _classify(exc, model.api_key)
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


def _simulator():
    global _llmsim
    if _llmsim is None:
        from runner.llmsim import LlmSim  # noqa: PLC0415 - imports litellm: workers only

        _llmsim = LlmSim()
    return _llmsim
