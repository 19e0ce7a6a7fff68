"""The outermost ASGI wrapper: every response of the web process is counted once
(`everruns_http_requests_total`), by the route template its router put in the scope (`ROUTE`), whichever
router answered: Django's (everruns/front/bridge.py) or those served before it (event streams, chat)."""

from everruns import telemetry
from everruns.front.bridge import ROUTE, UNMATCHED


class Counted:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counting_send(message):
            if message["type"] == "http.response.start":
                telemetry.http_request(
                    route=scope.get(ROUTE, UNMATCHED), method=scope["method"], status=message["status"]
                )
            await send(message)

        return await self.app(scope, receive, counting_send)
