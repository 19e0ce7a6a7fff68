"""Why a turn failed: the one list of `error.code` values in `turn.failed`, the session's `error` and
`llm.retrying`. The README lists the same codes (tests/test_vocabulary.py compares them)."""

from enum import StrEnum


class TurnErrorCode(StrEnum):
    # The LLM call failed (runner/llm/errors.py sorts litellm's exceptions into these).
    LLM_PROVIDER_ERROR = "llm_provider_error"
    LLM_RATE_LIMITED = "llm_rate_limited"
    LLM_TIMEOUT = "llm_timeout"
    LLM_CONNECTION_ERROR = "llm_connection_error"
    LLM_AUTHENTICATION_FAILED = "llm_authentication_failed"
    LLM_BAD_REQUEST = "llm_bad_request"
    CONTEXT_WINDOW_EXCEEDED = "context_window_exceeded"
    LLM_PERMISSION_DENIED = "llm_permission_denied"
    LLM_MODEL_NOT_FOUND = "llm_model_not_found"
    LLM_ERROR = "llm_error"  # any other LLM failure
    # The turn has no usable model (runner/resolution.py).
    MODEL_NOT_FOUND = "model_not_found"
    MODEL_DISABLED = "model_disabled"
    PROVIDER_DISABLED = "provider_disabled"
    PROVIDER_KEY_MISSING = "provider_key_missing"
    PROVIDER_KEY_UNREADABLE = "provider_key_unreadable"
    NO_DEFAULT_MODEL = "no_default_model"
    # The loop (runner/loop.py).
    MAX_ITERATIONS = "max_iterations"
    BUDGET_EXCEEDED = "budget_exceeded"
    INTERNAL_ERROR = "internal_error"


class TurnError(Exception):
    """An error that ends the turn with `turn.failed {error: {code, message}}`; the message is for the client."""

    def __init__(self, code: TurnErrorCode, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
