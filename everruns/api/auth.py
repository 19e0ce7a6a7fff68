"""Who may call `/v1`, decided in one place for both ways in: Django's handler (the middleware below)
and the routes served in front of it (event streams, upstream's `.../sse` and the chat front-ends, through
everruns/front/access.py).

- `AUTH_MODE=none`: open (the embedded quick start, which listens on 127.0.0.1 only).
- `AUTH_MODE=api_key`: `Authorization: Bearer evr_...` on every `/v1` route, checked before anything
  else; scope `agents` may not change providers, models or keys (403). A browser may instead show a
  stream token (`?token=`: it reads one session's events, never writes, and lives no longer than the key that
  minted it) or, for the debug pages, a staff login (admin scope with the `everruns.api_admin` permission or as
  a superuser, `agents` scope otherwise).
"""

import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth import get_user, get_user_model
from django.core import signing
from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission

from everruns.api.errors import DATABASE_ERRORS, envelope, unavailable
from everruns.api.keys import api_key_check, api_key_live
from everruns.api.limits import write_allowed
from everruns.front import routes
from everruns.models import ApiKey

STREAM_TOKEN_SALT = "everruns.stream-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# What makes a staff login admin scope on /v1 (superusers have every permission); everruns/migrations/0002.
API_ADMIN_PERMISSION = "everruns.api_admin"


@dataclass(frozen=True)
class Principal:
    kind: str  # "open" (AUTH_MODE=none), "key", "staff" or "stream_token"
    scope: str  # "admin", "agents" or "stream"
    key_id: str | None = None  # what rate limits and caps count by (a stream token's: its minter's)
    session_id: str | None = None  # a stream token's one session

    @property
    def turn_key_id(self) -> str | None:
        """What MAX_TURNS_PER_KEY counts this caller's turns by: an API key's id (other callers are not capped)."""
        return self.key_id if self.kind == "key" else None


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
    """`admin` to change providers, models and MCP servers and for anything on keys and webhooks; `agents` for
    the rest."""
    if path.startswith(("/v1/api-keys", "/v1/webhooks")):
        return ApiKey.Scope.ADMIN
    if path.startswith(("/v1/llm-providers", "/v1/llm-models", "/v1/mcp-servers")) and method not in SAFE_METHODS:
        return ApiKey.Scope.ADMIN
    return ApiKey.Scope.AGENTS


def staff_principal(user) -> Principal | None:
    """A logged-in active staff user's access, or None. Staff status alone opens the agents scope only."""
    if user is None or not (user.is_authenticated and user.is_active and user.is_staff):
        return None
    scope = ApiKey.Scope.ADMIN if user.has_perm(API_ADMIN_PERMISSION) else ApiKey.Scope.AGENTS
    return Principal(kind="staff", scope=scope, key_id=f"staff:{user.pk}")


def stream_token_create(session_id, ttl_seconds: int, minter: Principal) -> tuple[str, float]:
    """A token that reads the session's events; it names its minter (an API key or a staff user), and is void once
    that key is revoked or expires (or that user is no longer active staff)."""
    expires = time.time() + ttl_seconds
    payload = {"s": str(session_id), "e": expires}
    if minter.kind == "key":
        payload["k"] = minter.key_id
    elif minter.kind == "staff":
        payload["u"] = minter.key_id.removeprefix("staff:")
    return signing.dumps(payload, salt=STREAM_TOKEN_SALT, compress=True), expires


def _minter_live(payload: dict) -> str | None:
    """The key_id of the token's minter if it may still read (a live key, an active staff user), else None."""
    if payload.get("k"):
        return str(payload["k"]) if api_key_live(payload["k"]) else None
    if payload.get("u"):
        user = get_user_model().objects.filter(pk=payload["u"], is_active=True, is_staff=True).first()
        return f"staff:{user.pk}" if user is not None else None
    return None  # minted with AUTH_MODE=none: it opens nothing once keys are required


def _stream_token_principal(token: str, method: str, path: str) -> Principal | None:
    try:
        payload = signing.loads(token, salt=STREAM_TOKEN_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or float(payload.get("e", 0)) <= time.time():
        return None
    session_id = payload.get("s")
    if not isinstance(session_id, str) or not _token_opens(method, path, session_id):
        return None
    minter = _minter_live(payload)
    if minter is None:
        return None
    return Principal(kind="stream_token", scope="stream", key_id=minter, session_id=session_id)


# Open in every mode: what a client reads to learn how to sign in (upstream Everruns' auth config).
OPEN_ROUTES = frozenset({("GET", "/v1/auth/config"), ("HEAD", "/v1/auth/config")})


def _token_opens(method: str, path: str, session_id: str) -> bool:
    """A stream token opens the routes marked `token_reads` (everruns/front/routes.py: the events, list and stream,
    also under upstream's name `.../sse`, and the AI SDK's resume), for its own session, for reading only. Writes
    (POST .../chat, POST .../ag-ui, approvals) need a key: a token is carried in URLs, and would otherwise write
    outside its key's limits."""
    if method not in SAFE_METHODS:
        return False
    return any(route.token_reads and ids.get("session_id") == session_id for route, ids in routes.match_path(path))


def authenticate(
    *, method: str, path: str, authorization: str, query_string: str, staff: Principal | None
) -> Principal:
    """The caller of a `/v1` request, or Denied. `staff`: a staff login's access (staff_principal), if any."""
    if settings.AUTH_MODE == "none" or (method, path) in OPEN_ROUTES:
        return OPEN
    principal = None
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        key = api_key_check(secret.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise Denied(401, "unauthenticated", "Invalid, revoked or expired API key")
        principal = Principal(kind="key", scope=key.scope, key_id=str(key.pk))
    elif token := (parse_qs(query_string).get("token") or [""])[0]:
        principal = _stream_token_principal(token, method, path)
        if principal is None:
            message = "Invalid or expired stream token for this route (a stream token only reads its session's events)"
            raise Denied(401, "unauthenticated", message)
        return principal
    else:
        principal = staff
    if principal is None:
        raise Denied(401, "unauthenticated", "Authentication required: Authorization: Bearer <API key>")
    if required_scope(method, path) == ApiKey.Scope.ADMIN and principal.scope != ApiKey.Scope.ADMIN:
        if principal.kind == "staff":
            raise Denied(403, "forbidden", f"This login needs the {API_ADMIN_PERMISSION} permission for this")
        raise Denied(403, "forbidden", "This API key's scope (agents) does not allow this")
    return principal


class DocumentAccess(BasePermission):
    """The OpenAPI document and Swagger UI: public (they say what the API is, never what it holds) unless
    OPENAPI_PUBLIC=false, then only with a live API key or a staff login, like /v1."""

    def has_permission(self, request, view):
        if settings.OPENAPI_PUBLIC or settings.AUTH_MODE == "none":
            return True
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and api_key_check(secret.strip()) is not None:
            return True
        # DRF has replaced request.user (no authentication classes: None); the login is read from the session again.
        if staff_principal(get_user(request._request)) is not None:
            return True
        raise NotAuthenticated("The API document needs an API key or a staff login (OPENAPI_PUBLIC=false)")


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
            authorization = request.headers.get("Authorization", "")
            query_string = request.META.get("QUERY_STRING", "")
            # A staff cookie counts only without a key or a token (as on the routes in front of Django): its user
            # and permissions are read from the database then only (AuthenticationMiddleware: get_user).
            cookie = not authorization and "token=" not in query_string
            staff = staff_principal(getattr(request, "user", None)) if cookie else None
            principal = authenticate(
                method=request.method,
                path=request.path,
                authorization=authorization,
                query_string=query_string,
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
