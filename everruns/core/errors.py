"""Domain errors: raised by services, selectors and tools; everruns.api.errors turns them into the JSON envelope."""


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationError(AppError):
    status, code = 400, "validation_error"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


class TooManyRequests(AppError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: dict | None = None):
        super().__init__(message, details=details)
        self.retry_after = retry_after
