"""The one table of what the web process serves in front of Django's handler (on the event loop, no thread per
request): each route a Django `path()` pattern, as Channels' URLRouter has them, so converters and templates are
Django's own (a malformed id does not match: Django then answers its 404). `sessions/urls.py` declares the same
templates for the OpenAPI document; the template is also the metrics' `route` label.

A new streaming route: one line here, its handler, and the router that serves it (docs/streams.md)."""

from dataclasses import dataclass

from django.urls.resolvers import RoutePattern

SESSION = "v1/agents/<uuid:agent_id>/sessions/<uuid:session_id>"


@dataclass(frozen=True)
class FrontRoute:
    name: str
    method: str
    template: str
    # A stream token opens it, for the token's own session (reading only: tokens are carried in URLs).
    token_reads: bool = False

    @property
    def pattern(self) -> RoutePattern:
        return _PATTERNS[self.template]


ROUTES = (
    # GET session, the status poll (sessions/reads.py); PATCH and DELETE are Django's.
    FrontRoute("session", "GET", SESSION),
    # The event stream (`Accept: text/event-stream` or `?format=event-stream`; the JSON list is Django's), and
    # the same stream under upstream Everruns' name, whatever the Accept header.
    FrontRoute("events", "GET", f"{SESSION}/events", token_reads=True),
    FrontRoute("sse", "GET", f"{SESSION}/sse", token_reads=True),
    # The chat front-ends (sessions/chat/sse.py): AG-UI, the AI SDK's chat and its resume.
    FrontRoute("ag-ui", "POST", "v1/agents/<uuid:agent_id>/ag-ui"),
    FrontRoute("chat", "POST", f"{SESSION}/chat"),
    FrontRoute("chat-resume", "GET", f"{SESSION}/chat/stream", token_reads=True),
    FrontRoute("chat-resume", "GET", f"{SESSION}/chat/<str:chat_id>/stream", token_reads=True),
)
_PATTERNS = {route.template: RoutePattern(route.template, is_endpoint=True) for route in ROUTES}


def match_path(path: str) -> list[tuple[FrontRoute, dict]]:
    """Every route whose template matches `path` (any method), with its arguments as strings."""
    found = []
    for route in ROUTES:
        matched = route.pattern.match(path.removeprefix("/"))
        if matched is not None and matched[0] == "":
            found.append((route, {name: str(value) for name, value in matched[2].items()}))
    return found


def match(method: str, path: str) -> tuple[FrontRoute, dict] | None:
    """The route for this request, with its arguments (ids as strings), or None: Django serves it."""
    return next(((route, kwargs) for route, kwargs in match_path(path) if route.method == method), None)


_MATCHED = "everruns.front_route"  # the scope's key for what `of_request` found


def of_request(scope) -> tuple[FrontRoute, dict] | None:
    """`match` for an HTTP request's scope, done once per request however many routers ask."""
    if _MATCHED not in scope:
        scope[_MATCHED] = match(scope["method"], scope["path"])
    return scope[_MATCHED]
