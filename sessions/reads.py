"""GET session, the status poll, served on the event loop in front of Django's handler, as the streams are.

Clients poll it every few milliseconds while a turn runs (20 polling clients are most of a web process's work), so
it takes one hop to a web thread, for the caller's check and the read, and nothing of Django's handler, middleware
or DRF's dispatch around them: 1,760 requests a second against 880 through Django on this machine. The answer is
Django's view's (`sessions.views.SessionViewSet.retrieve`): the same body, status, error envelope and headers, which
tests/sessions/test_reads.py compares. What it would not answer the same way goes on to Django: `?format=`, an
Accept without JSON (406), HEAD, a plain-HTTP request that SECURE_SSL_REDIRECT sends to https."""

from urllib.parse import parse_qs

from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from rest_framework.utils.mediatypes import media_type_matches, order_by_precedence

from everruns.api.auth import Denied
from everruns.api.errors import DATABASE_ERRORS, envelope
from everruns.core.errors import NotFound
from everruns.front import access, answers, routes
from everruns.front.bridge import ROUTE, on_db_thread, wsgi_environ
from sessions import selectors
from sessions.serializers import SessionSerializer

# DRF's Allow header for the session's route (SessionViewSet: retrieve, partial_update, destroy).
ALLOW = (b"allow", b"GET, PATCH, DELETE, HEAD, OPTIONS")
_security = SecurityMiddleware(lambda request: None)
_frames = XFrameOptionsMiddleware(lambda request: None)


def _takes_json(accept: str) -> bool:
    """Whether DRF's negotiation (a JSON renderer only) answers this Accept header, rather than a 406."""
    accepts = [item.strip() for item in accept.split(",") if item.strip()] or ["*/*"]
    return any(media_type_matches("application/json", m) for group in order_by_precedence(accepts) for m in group)


def _headers(request, viewed: bool) -> list:
    """What Django's middleware adds to the answer: its security headers (with HSTS on https), `Vary: Cookie` when
    the caller came without a key or a token (the staff login was read from the session), and, for an answer of
    the view rather than of the auth middleware (a refusal), DRF's Allow and X-Frame-Options."""
    response = _security.process_response(request, HttpResponse())
    if not request.headers.get("Authorization") and "token=" not in request.META.get("QUERY_STRING", ""):
        response["Vary"] = "Cookie"
    if viewed:
        response = _frames.process_response(request, response)
    added = [(name.lower(), value) for name, value in response.items() if name.lower() != "content-type"]
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in added] + ([ALLOW] if viewed else [])


def _answer(request, agent_id: str, session_id: str) -> tuple[int, list, bytes]:
    """On a web thread: the caller's check, the read, the body."""
    viewed = False
    try:
        access.host_check(request)
        access.identify(request, write=False)
        viewed = True
        session = selectors.session_get(agent_id=agent_id, session_id=session_id)
    except Denied as refusal:
        status, headers, body = answers.refusal_response(refusal)
    except NotFound as missing:
        status, headers, body = answers.json_response(missing.status, envelope(missing.code, missing.message))
    except DATABASE_ERRORS as exc:
        status, headers, body = answers.unavailable_response(exc)
    else:
        status, headers, body = answers.json_response(200, SessionSerializer(session).data)
    return status, [*headers, *_headers(request, viewed)], body


class ReadRouter:
    """ASGI: GET session here, everything else on to `app`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and (found := routes.of_request(scope)):
            route, ids = found
            if route.name == "session" and (request := _servable(scope)) is not None:
                scope[ROUTE] = route.template  # the metrics' `route` label
                answer = await on_db_thread(_answer, request, ids["agent_id"], ids["session_id"])
                return await answers.send_answer(send, answer)
        return await self.app(scope, receive, send)


def _servable(scope) -> WSGIRequest | None:
    """The request, when this front answers it as Django would; None: Django answers."""
    if "format" in parse_qs(scope.get("query_string", b"").decode("latin-1")):
        return None
    if not _takes_json(dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")):
        return None
    request = WSGIRequest(wsgi_environ(scope, b""))
    if _security.process_request(request) is not None:  # SECURE_SSL_REDIRECT: Django redirects it
        return None
    return request
