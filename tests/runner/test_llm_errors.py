"""How an exception from litellm becomes the turn's error code, and whether it is retried. The
exceptions are litellm's own, built as its provider adapters build them (other providers than the
OpenAI-compatible one the fake server speaks raise these classes directly)."""

import httpx
import litellm
import pytest

from runner.llm import LlmError
from runner.llm.errors import classify_type

ARGS = {"message": "scripted", "llm_provider": "anthropic", "model": "m"}


def response(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", "http://provider.invalid/v1/chat/completions"))


@pytest.mark.parametrize(
    "exc,code,transient",
    [
        (litellm.ContextWindowExceededError(**ARGS), "context_window_exceeded", False),
        (litellm.AuthenticationError(**ARGS), "llm_authentication_failed", False),
        (litellm.PermissionDeniedError(**ARGS, response=response(403)), "llm_permission_denied", False),
        (litellm.NotFoundError(**ARGS), "llm_model_not_found", False),
        (litellm.BadRequestError(**ARGS), "llm_bad_request", False),
        (litellm.RateLimitError(**ARGS), "llm_rate_limited", True),
        (litellm.Timeout(**ARGS), "llm_timeout", True),
        (litellm.APIConnectionError(**ARGS), "llm_connection_error", True),
        (litellm.InternalServerError(**ARGS), "llm_provider_error", True),
        (litellm.ServiceUnavailableError(**ARGS), "llm_provider_error", True),
        (litellm.BadGatewayError(**ARGS), "llm_provider_error", True),
        (litellm.APIError(status_code=403, **ARGS), "llm_permission_denied", False),
        (litellm.APIError(status_code=404, **ARGS), "llm_model_not_found", False),
        (litellm.APIError(status_code=429, **ARGS), "llm_rate_limited", True),
        (litellm.APIError(status_code=418, **ARGS), "llm_error", False),
        (litellm.APIError(status_code=500, **ARGS), "llm_provider_error", True),
        (litellm.APIError(status_code=499, **ARGS), "llm_error", False),
        (ValueError("a chunk litellm could not parse"), "llm_error", False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_classification(exc, code, transient):
    error = classify_type(exc)
    assert isinstance(error, LlmError)
    assert (error.code, error.transient) == (code, transient)
    assert "scripted" not in error.message and "chunk" not in error.message  # never the exception's text


def test_a_connection_failure_reported_as_a_server_error_is_a_connection_error():
    """litellm 1.110.2 reports an unreachable OpenAI-compatible server as InternalServerError."""
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as refused:
            raise httpx.ConnectError("[Errno 111] Connection refused") from refused
    except httpx.ConnectError:
        try:
            raise litellm.InternalServerError(**{**ARGS, "message": "Connection error."})
        except litellm.InternalServerError as exc:
            wrapped = exc
    error = classify_type(wrapped)
    assert (error.code, error.transient) == ("llm_connection_error", True)


def test_the_message_is_ours_with_the_status():
    error = classify_type(litellm.BadRequestError(**{**ARGS, "message": "<html>" + "x" * 2000}))
    assert error.message == "The LLM provider refused the request (HTTP 400)"
