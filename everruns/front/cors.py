"""CORS, off unless `CORS_ALLOWED_ORIGINS` lists origins: an ASGI wrapper, so the event streams (served
in front of Django) and Django's routes answer alike."""

from django.conf import settings

ALLOW_HEADERS = b"authorization, content-type, idempotency-key, last-event-id"
ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"


class Cors:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not settings.CORS_ALLOWED_ORIGINS:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if origin not in settings.CORS_ALLOWED_ORIGINS:
            return await self.app(scope, receive, send)
        allow = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            preflight = [
                *allow,
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", ALLOW_HEADERS),
                (b"access-control-max-age", b"600"),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": preflight})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *allow]}
            await send(message)

        return await self.app(scope, receive, send_with_cors)
