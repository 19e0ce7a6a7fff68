"""Who may call `/v1`, decided in one place for both ways in: Django's handler (the middleware below)
and the event streams served in front of it (sessions/sse.py).

- `AUTH_MODE=none`: open (the embedded quick start, which listens on 127.0.0.1 only).
- `AUTH_MODE=api_key`: `Authorization: Bearer evr_...` on every `/v1` route, checked before anything
  else; scope `agents` may not change providers, models or keys (403). A browser may instead show a
  stream token (`?token=`, for one session's events and its chat front-end routes only) or, for the debug
  pages, a staff login.
"""

import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from django.conf import settings
from django.core import signing
from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware

from everruns.api.errors import DATABASE_ERRORS, envelope, unavailable
from everruns.api.keys import api_key_check
from everruns.api.limits import write_allowed
from everruns.models import ApiKey

STREAM_TOKEN_SALT = "everruns.stream-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Principal:
    kind: str  # "open" (AUTH_MODE=none), "key", "staff" or "stream_token"
    scope: str  # "admin", "agents" or "stream"
    key_id: str | None = None  # what rate limits and caps count by
    session_id: str | None = None  # a stream token's one session


OPEN = Principal(kind="open", scope=ApiKey.Scope.ADMIN)


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JsonResponse:
        response = JsonResponse(envelope(self.code, self.message), status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="everruns"'
        return response


def required_scope(method: str, path: str) -> str:
    """`admin` to change providers, models and MCP servers and for anything on keys; `agents` for the rest."""
    if path.startswith("/v1/api-keys"):
        return ApiKey.Scope.ADMIN
    if path.startswith(("/v1/llm-providers", "/v1/llm-models", "/v1/mcp-servers")) and method not in SAFE_METHODS:
        return ApiKey.Scope.ADMIN
    return ApiKey.Scope.AGENTS


def stream_token_create(session_id, ttl_seconds: int) -> tuple[str, float]:
    expires = time.time() + ttl_seconds
    return signing.dumps({"s": str(session_id), "e": expires}, salt=STREAM_TOKEN_SALT, compress=True), expires


def _stream_token_session(token: str) -> str | None:
    try:
        payload = signing.loads(token, salt=STREAM_TOKEN_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or float(payload.get("e", 0)) <= time.time():
        return None
    return payload.get("s")


# The routes a stream token opens, for its own session: the events (list and stream), and the chat front-ends'
# routes (AI SDK: POST .../chat, GET .../chat/stream; AG-UI: POST .../ag-ui, whose handler checks that the
# thread is the token's session).
TOKEN_SESSION_ROUTE = re.compile(
    r"^/v1/agents/[^/]+/sessions/(?P<session>[^/]+)/(?:(?P<events>events)|(?P<chat>chat)|chat(?:/[^/]+)?/stream)$"
)
AGUI_ROUTE = re.compile(r"^/v1/agents/[^/]+/ag-ui$")


def _token_opens(method: str, path: str, session_id: str) -> bool:
    if AGUI_ROUTE.match(path):
        return method == "POST"
    match = TOKEN_SESSION_ROUTE.match(path)
    if match is None or match["session"] != session_id:
        return False
    return method == "POST" if match["chat"] else method in SAFE_METHODS


def authenticate(*, method: str, path: str, authorization: str, query_string: str, staff: bool) -> Principal:
    """The caller of a `/v1` request, or Denied. `staff`: a logged-in active staff user (session cookie)."""
    if settings.AUTH_MODE == "none":
        return OPEN
    principal = None
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        key = api_key_check(secret.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise Denied(401, "unauthenticated", "Invalid, revoked or expired API key")
        principal = Principal(kind="key", scope=key.scope, key_id=str(key.pk))
    elif token := (parse_qs(query_string).get("token") or [""])[0]:
        session_id = _stream_token_session(token)
        if session_id is None or not _token_opens(method, path, session_id):
            raise Denied(401, "unauthenticated", "Invalid or expired stream token for this route")
        return Principal(kind="stream_token", scope="stream", key_id=f"token:{session_id}", session_id=session_id)
    elif staff:
        principal = Principal(kind="staff", scope=ApiKey.Scope.ADMIN, key_id="staff")
    if principal is None:
        raise Denied(401, "unauthenticated", "Authentication required: Authorization: Bearer <API key>")
    if required_scope(method, path) == ApiKey.Scope.ADMIN and principal.scope != ApiKey.Scope.ADMIN:
        raise Denied(403, "forbidden", "This API key's scope (agents) does not allow this")
    return principal


class ApiAuthMiddleware:
    """Django's way in: every `/v1` request is authenticated (and its writes rate-limited) before URL
    resolution, so an unknown route without a key is a 401 too."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.csrf = CsrfViewMiddleware(get_response)

    def __call__(self, request):
        if not request.path.startswith("/v1/") and request.path != "/v1":
            return self.get_response(request)
        try:
            user = getattr(request, "user", None)  # a staff cookie's user is read from the database here
            staff = bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)
            principal = authenticate(
                method=request.method,
                path=request.path,
                authorization=request.headers.get("Authorization", ""),
                query_string=request.META.get("QUERY_STRING", ""),
                staff=staff,
            )
        except Denied as denied:
            return denied.response()
        except DATABASE_ERRORS as exc:
            return unavailable(exc)
        if principal.kind == "staff" and request.method not in SAFE_METHODS:
            # A cookie is sent by the browser on its own: writes need the CSRF token as well.
            rejected = self.csrf.process_view(request, None, (), {})
            if rejected is not None:
                return Denied(403, "forbidden", "CSRF check failed").response()
        if principal.key_id and request.method not in SAFE_METHODS:
            allowed, retry_after = write_allowed(principal.key_id)
            if not allowed:
                response = JsonResponse(envelope("rate_limited", "Too many writes; slow down"), status=429)
                response["Retry-After"] = str(retry_after)
                return response
        request.principal = principal
        return self.get_response(request)
