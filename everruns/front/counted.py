"""The outermost ASGI wrapper: every response of the web process is counted once
(`everruns_http_requests_total`), by the route template its router put in the scope (`ROUTE`), whichever
router answered: Django's (everruns/front/bridge.py) or those served before it (event streams, chat). With
tracing on, each request is a server span here too, continuing the caller's `traceparent`."""

from everruns import telemetry
from everruns.front.bridge import ROUTE, UNMATCHED
from everruns.telemetry import tracing


class Counted:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500  # the client left before an answer

        async def counting_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                telemetry.http_request(route=scope.get(ROUTE, UNMATCHED), method=scope["method"], status=status)
            await send(message)

        if not tracing.ON:
            return await self.app(scope, receive, counting_send)
        span = tracing.request_started(scope["method"], scope["path"], dict(scope.get("headers") or []))
        try:
            return await self.app(scope, receive, counting_send)
        finally:
            tracing.request_finished(span, route=scope.get(ROUTE, UNMATCHED), status=status)
