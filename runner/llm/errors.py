"""The errors of an LLM call: litellm's exceptions (and our guard's refusals) sorted into turn error codes, with
whether a retry may help and the provider's Retry-After; the message a client reads is always ours."""

import logging
import re

import httpx

from agents.secrets import redact
from everruns.core import netguard
from runner.errors import TurnError, TurnErrorCode
from runner.llm import library

logger = logging.getLogger(__name__)


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


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None) or {}
    try:
        value = headers.get("retry-after") if hasattr(headers, "get") else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def classify(exc: Exception, api_key: str | None) -> LlmError:
    error = classify_type(exc)
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


def classify_type(exc: Exception) -> LlmError:
    lib = library.lib()
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
