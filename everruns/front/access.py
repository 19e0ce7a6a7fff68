"""Access for the routes served on the event loop in front of Django's handler (sessions/streams/sse.py,
sessions/chat/sse.py): what Django's middleware does for every other route, done here once for all of them.

- `caller`: the Host check (`ALLOWED_HOSTS`, by Django's own `HttpRequest.get_host`), then who calls
  (everruns/api/auth.py's `authenticate`, a staff cookie read the way Django's AuthenticationMiddleware reads it:
  `django.contrib.auth.get_user`, which checks the session's auth hash, so a password change ends old logins here
  too), and for writes the write rate limit.
- `require_json`: a write's body must be `application/json` (else 415), so a cross-site `text/plain` form post,
  which a browser sends without a CORS preflight, is refused.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest

from everruns.api.auth import SAFE_METHODS, Denied, Principal, authenticate, staff_principal
from everruns.api.limits import write_allowed
from everruns.core.errors import TooManyRequests
from everruns.front.bridge import on_db_thread, wsgi_environ


def host_check(request) -> None:
    """Denied (400) unless the request's Host (or X-Forwarded-Host, as Django reads it) is in ALLOWED_HOSTS."""
    try:
        request.get_host()
    except DisallowedHost:
        raise Denied(400, "validation_error", "Bad request: the Host header is not in ALLOWED_HOSTS") from None


def require_json(scope) -> None:
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        message = f'Unsupported media type "{content_type}" in request; send application/json'
        raise Denied(415, "unsupported_media_type", message)


def _staff(request) -> Principal | None:
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not cookie:
        return None
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=cookie)
    return staff_principal(get_user(request))


def identify(request, write: bool) -> Principal:
    """Who makes this request (after `host_check`), on a web thread: it may read the database. Denied, or
    TooManyRequests for a write past the rate limit."""
    authorization = request.headers.get("Authorization", "")
    query_string = request.META.get("QUERY_STRING", "")
    staff = None
    # A staff cookie opens reads only here: a write would need Django's CSRF check, which these routes do not run.
    if not write and settings.AUTH_MODE != "none" and not authorization and "token=" not in query_string:
        staff = _staff(request)
    principal = authenticate(
        method=request.method, path=request.path, authorization=authorization, query_string=query_string, staff=staff
    )
    if write and principal.key_id:
        allowed, retry_after = write_allowed(principal.key_id)
        if not allowed:
            raise TooManyRequests("Too many writes; slow down", retry_after=retry_after)
    return principal


async def caller(scope) -> Principal:
    """Who makes this request, or Denied (a Host not allowed, no or bad credentials) or TooManyRequests (writes)."""
    request = WSGIRequest(wsgi_environ(scope, b""))
    host_check(request)
    return await on_db_thread(identify, request, scope["method"] not in SAFE_METHODS)
