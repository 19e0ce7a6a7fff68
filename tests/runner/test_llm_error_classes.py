"""How an LLM call's exception becomes an LlmError: code, transient or not, status, Retry-After, redaction.

These need litellm's exception classes, so the first test here pays for importing litellm (~5 s): they live here,
not in tests/unit (which must stay seconds). No service is involved.
"""

import httpx
import pytest

from agents.secrets import remember
from runner.llm import errors, library

REQUEST = httpx.Request("POST", "https://llm.example/v1/chat/completions")


@pytest.fixture(scope="module")
def lib():
    return library.lib()


def response(status: int, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, request=REQUEST)


def vendor_error(lib, name: str, status: int | None = None, message: str = "boom", **extra):
    """One of litellm's exceptions, built the way litellm builds it."""
    cls = getattr(lib, name)
    args = {"message": message, "model": "gpt-x", "llm_provider": "openai", **extra}
    if name == "PermissionDeniedError" and "response" not in args:  # the one that requires a response
        args["response"] = response(status or 403)
    return cls(**args)


@pytest.mark.parametrize(
    ("name", "code", "transient", "status"),
    [
        ("ContextWindowExceededError", "context_window_exceeded", False, 400),
        ("AuthenticationError", "llm_authentication_failed", False, 401),
        ("PermissionDeniedError", "llm_permission_denied", False, 403),
        ("NotFoundError", "llm_model_not_found", False, 404),
        ("BadRequestError", "llm_bad_request", False, 400),
        ("ContentPolicyViolationError", "llm_bad_request", False, 400),
        ("RateLimitError", "llm_rate_limited", True, 429),
        ("Timeout", "llm_timeout", True, 408),
        ("APIConnectionError", "llm_connection_error", True, 500),
        ("InternalServerError", "llm_provider_error", True, 500),
        ("ServiceUnavailableError", "llm_provider_error", True, 503),
        ("BadGatewayError", "llm_provider_error", True, 502),
    ],
)
def test_each_litellm_error_has_its_code_and_retry_class(lib, name, code, transient, status):
    error = errors.classify_type(vendor_error(lib, name))
    assert (error.code, error.transient, error.status) == (code, transient, status)


def test_a_context_window_error_is_not_taken_for_a_plain_bad_request(lib):
    # ContextWindowExceededError is a BadRequestError: the more specific class must win.
    exc = vendor_error(lib, "ContextWindowExceededError")
    assert isinstance(exc, lib.BadRequestError)
    assert errors.classify_type(exc).code == "context_window_exceeded"


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [(500, "llm_provider_error", True), (599, "llm_provider_error", True), (429, "llm_rate_limited", True)]
    + [(400, "llm_bad_request", False), (418, "llm_error", False), (499, "llm_error", False)],
)
def test_an_unlisted_error_with_a_status_is_classified_by_it(lib, status, code, transient):
    exc = lib.APIError(status_code=status, message="odd", model="gpt-x", llm_provider="openai")
    error = errors.classify_type(exc)
    assert (error.code, error.transient, error.status) == (code, transient, status)


def test_any_other_exception_is_a_permanent_llm_error_without_status():
    error = errors.classify_type(ValueError("bad chunk"))
    assert (error.code, error.transient, error.status) == ("llm_error", False, None)
    assert error.message == "The LLM call failed (ValueError)"  # not the text: it may quote the provider


def test_a_status_that_is_not_a_number_is_ignored():
    exc = ValueError("weird")
    exc.status_code = "503"
    error = errors.classify_type(exc)
    assert (error.code, error.transient, error.status) == ("llm_error", False, None)


def json_response(status: int, body) -> httpx.Response:
    return httpx.Response(status, json=body, request=REQUEST)


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (
            {"error": {"message": "secret text", "type": "invalid_request_error", "code": "bad_value"}},
            ", invalid_request_error, bad_value",
        ),
        ({"error": {"message": "secret text", "type": "server_error", "code": None}}, ", server_error"),
        ({"error": {"type": "same", "code": "same"}}, ", same"),
        ({"type": "top_level", "message": "secret text"}, ", top_level"),
        ({"error": {"type": "<html>secret text</html>", "code": "x" * 65}}, ""),  # not identifiers: dropped
        ({"error": "secret text"}, ""),
        (["secret text"], ""),
    ],
)
def test_the_message_shows_the_status_and_the_providers_error_type_and_code_only(lib, body, shown):
    exc = vendor_error(lib, "BadRequestError", message="secret text", response=json_response(400, body))
    assert errors.classify_type(exc).message == f"The LLM provider refused the request (HTTP 400{shown})"


def test_an_html_error_page_shows_only_the_status(lib):
    page = httpx.Response(502, html="<html>secret text</html>", request=REQUEST)
    exc = lib.APIError(status_code=502, message="<html>secret text</html>", model="x", llm_provider="openai")
    exc.response = page
    assert errors.classify_type(exc).message == "The LLM provider failed (HTTP 502)"


def test_retry_after_comes_from_the_response_headers(lib):
    exc = vendor_error(lib, "RateLimitError", response=response(429, {"Retry-After": "7"}))
    assert errors.classify(exc, None).retry_after == 7.0


def test_retry_after_may_be_fractional(lib):
    exc = vendor_error(lib, "RateLimitError", response=response(429, {"retry-after": "0.25"}))
    assert errors.classify(exc, None).retry_after == 0.25


def test_retry_after_falls_back_to_litellm_response_headers():
    exc = RuntimeError("slow down")
    exc.litellm_response_headers = {"retry-after": "3"}
    assert errors.classify(exc, None).retry_after == 3.0


@pytest.mark.parametrize("headers", [{}, {"retry-after": "soon"}, {"retry-after": ""}])
def test_a_missing_or_unreadable_retry_after_is_none(lib, headers):
    exc = vendor_error(lib, "RateLimitError", response=response(429, headers))
    assert errors.classify(exc, None).retry_after is None


def test_an_exception_without_a_response_has_no_retry_after():
    assert errors.classify(RuntimeError("x"), None).retry_after is None


def test_the_api_key_is_redacted_from_the_message(lib):
    exc = vendor_error(
        lib,
        "AuthenticationError",
        message="Incorrect API key provided: sk-test-abcdef123456 (twice: sk-test-abcdef123456)",
    )
    error = errors.classify(exc, "sk-test-abcdef123456")
    assert "sk-test-abcdef123456" not in error.message
    assert error.code == "llm_authentication_failed"


def test_the_exception_text_is_logged_with_the_key_redacted(lib, caplog):
    exc = vendor_error(lib, "AuthenticationError", message="Incorrect API key provided: sk-test-abcdef123456")
    errors.classify(exc, "sk-test-abcdef123456")
    assert "Incorrect API key provided: [redacted]" in caplog.text and "sk-test-abcdef123456" not in caplog.text


def test_any_key_this_process_decrypted_is_redacted_in_the_log_too(caplog):
    remember("sk-remembered-9f8e7d6c")
    error = errors.classify(RuntimeError("echo sk-remembered-9f8e7d6c back"), None)
    assert "echo [redacted] back" in caplog.text and "sk-remembered" not in caplog.text + error.message


def test_classify_keeps_the_code_and_retry_class(lib):
    exc = vendor_error(lib, "RateLimitError", response=response(429, {"retry-after": "2"}))
    error = errors.classify(exc, "sk-unrelated-000000")
    assert (error.code, error.transient, error.status, error.retry_after) == ("llm_rate_limited", True, 429, 2.0)
    assert isinstance(error, errors.LlmError)
