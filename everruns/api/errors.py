"""The one handler that turns every error into the JSON envelope."""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from everruns.core.errors import AppError, TooManyRequests

logger = logging.getLogger(__name__)


def envelope(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


# The database away (a restart, a failover) is not a bug of the request: 503 with Retry-After, not a 500.
DATABASE_ERRORS = (OperationalError, InterfaceError)
UNAVAILABLE = ("unavailable", "The database is unavailable for a moment; try again")
RETRY_UNAVAILABLE_SECONDS = 1


def unavailable(exc) -> JsonResponse:
    logger.warning("database unavailable: %s", exc)
    response = JsonResponse(envelope(*UNAVAILABLE), status=503)
    response["Retry-After"] = str(RETRY_UNAVAILABLE_SECONDS)
    return response


def field_errors(detail) -> dict:
    """DRF error details -> {field: [messages]}."""
    if isinstance(detail, dict):
        return {str(k): _messages(v) for k, v in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value) -> list:
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(_messages(item) if isinstance(item, (list, dict)) else [str(item)])
        return out
    if isinstance(value, dict):
        return [f"{k}: {'; '.join(_messages(v))}" for k, v in value.items()]
    return [str(value)]


_DRF_CODES = {
    drf.ParseError: (400, "validation_error"),
    drf.NotAuthenticated: (401, "unauthenticated"),
    drf.AuthenticationFailed: (401, "unauthenticated"),
    drf.PermissionDenied: (403, "forbidden"),
    drf.NotFound: (404, "not_found"),
    drf.MethodNotAllowed: (405, "method_not_allowed"),
    drf.NotAcceptable: (406, "not_acceptable"),
    drf.UnsupportedMediaType: (415, "unsupported_media_type"),
    drf.Throttled: (429, "rate_limited"),
}


def exception_handler(exc, context):
    if isinstance(exc, AppError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        return Response(envelope(exc.code, exc.message, exc.details), status=exc.status, headers=headers)
    if isinstance(exc, RequestDataTooBig):
        return Response(envelope("payload_too_large", "Request body is too large"), status=413)
    if isinstance(exc, Http404):
        return Response(envelope("not_found", "Not found"), status=404)
    if isinstance(exc, PermissionDenied):
        return Response(envelope("forbidden", "Forbidden"), status=403)
    if isinstance(exc, drf.ValidationError):
        return Response(envelope("validation_error", "Invalid request", field_errors(exc.detail)), status=400)
    for cls, (status, code) in _DRF_CODES.items():
        if isinstance(exc, cls):
            headers = {}
            if isinstance(exc, drf.Throttled) and exc.wait:
                headers["Retry-After"] = str(int(exc.wait))
            if isinstance(exc, drf.ParseError):
                return Response(envelope(code, "Malformed request body", {"body": [str(exc.detail)]}), status=status)
            return Response(envelope(code, str(exc.detail)), status=status, headers=headers)
    if isinstance(exc, drf.APIException):
        return Response(envelope("error", str(exc.detail)), status=exc.status_code)
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("database unavailable: %s", exc)
        headers = {"Retry-After": str(RETRY_UNAVAILABLE_SECONDS)}
        return Response(envelope(*UNAVAILABLE), status=503, headers=headers)
    logger.exception("unhandled error in %s", context.get("view"))
    return Response(envelope("internal_error", "Internal server error"), status=500)


# Django-level handlers, for paths no DRF view answers (unknown URLs, non-UUID ids).
def handler404(request, exception=None):
    return JsonResponse(envelope("not_found", "Not found"), status=404)


def handler500(request):
    return JsonResponse(envelope("internal_error", "Internal server error"), status=500)


def handler400(request, exception=None):
    return JsonResponse(envelope("validation_error", "Bad request"), status=400)


def handler403(request, exception=None):
    return JsonResponse(envelope("forbidden", "Forbidden"), status=403)
