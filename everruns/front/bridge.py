"""Django's synchronous handler behind ASGI, on a bounded pool of threads: one hand-off per request.

Django's own ASGI handler runs each request's sync middleware and view on a thread made for that
request, hopping between the event loop and that thread for every middleware, and so opens a
database connection per request (connections belong to threads). Here the body is read on the loop,
then the whole request runs on one of `WEB_THREADS` long-lived threads, each keeping its database
connection open between requests (`DB_CONN_MAX_AGE`). Event streams never come here (sessions/streams/sse.py),
but their database reads run on the same threads (`on_db_thread`): a web process holds at most
`WEB_THREADS` connections, and a stream's reads reuse them instead of opening one each.
"""

import asyncio
import contextvars
import functools
import io
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections

from everruns.api.errors import envelope
from everruns.core import deferred
from everruns.telemetry import tracing


def wsgi_environ(scope, body: bytes) -> dict:
    """The WSGI environ of an ASGI request (Django's request META), for Django's handler and for the routes served
    in front of it (everruns/front/access.py)."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf8").decode("latin1"),
        "PATH_INFO": scope["path"].encode("utf8").decode("latin1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers") or []:
        name = raw_name.decode("latin1").upper().replace("-", "_")
        value = raw_value.decode("latin1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif name != "CONTENT_LENGTH":
            key = f"HTTP_{name}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


async def _too_large(send, limit: int) -> None:
    body = json.dumps(envelope("payload_too_large", f"Request body is larger than {limit} bytes")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body is not read
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(scope, receive, send) -> bytes | None:
    """The request body, read on the loop; None when it was refused (413, answered here) or the client left.
    Bodies over MAX_REQUEST_BYTES are refused before they are read: by their Content-Length, or, when
    chunked, as soon as what arrived passes the limit."""
    limit = settings.MAX_REQUEST_BYTES
    length = dict(scope.get("headers") or []).get(b"content-length", b"0")
    if not length.isdigit() or int(length) > limit:
        await _too_large(send, limit)
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            await _too_large(send, limit)
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def db_threads() -> ThreadPoolExecutor:
    """The web process's `WEB_THREADS` threads: every request and every database read of a stream runs on
    one, each thread keeping its connection."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(settings.WEB_THREADS, thread_name_prefix="web")
    return _pool


def _checked(fn, *args, **kwargs):
    close_old_connections()  # a connection past DB_CONN_MAX_AGE, or broken by a database restart, is replaced
    return fn(*args, **kwargs)


async def on_db_thread(fn, *args, **kwargs):
    """Run the synchronous `fn` (database work) on one of the web threads, from the event loop."""
    return await asyncio.get_running_loop().run_in_executor(db_threads(), traced(_checked, fn, *args, **kwargs))


def traced(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` for a pool thread; with tracing on, in the caller's context (the request's span, so
    a turn queued there stores it: run_in_executor does not carry context variables)."""
    if tracing.ON:
        return functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return functools.partial(fn, *args, **kwargs)


ROUTE = "everruns.route"  # the scope's (and the WSGI environ's) key for the route template that answered
UNMATCHED = "unmatched"


class _Handler(WSGIHandler):
    def get_response(self, request):
        """Django's, noting the URL pattern that answered (a template, never an id) for the metrics."""
        response = super().get_response(request)
        match = request.resolver_match
        request.environ[ROUTE] = match.route if match is not None and match.route else UNMATCHED
        return response


class DjangoBridge:
    def __init__(self):
        self.handler = _Handler()
        self.pool = db_threads()

    def _respond(self, environ: dict, deliver):
        """On a pool thread: the whole request and the whole response body, given to `deliver(status, headers,
        body)`; then the wake-ups the request's writes made (everruns/core/deferred.py), while the loop sends."""
        held = deferred.hold()
        try:
            deliver(*self._response(environ))
        finally:
            deferred.release(held)

    def _response(self, environ: dict):
        started = {}

        def start_response(status, headers, exc_info=None):
            started["status"], started["headers"] = int(status.split(" ", 1)[0]), headers

        response = self.handler(environ, start_response)
        if getattr(response, "is_async", False):
            # An endless async stream (the events route reached with a format sessions/streams/sse.py did not
            # route) would hold this thread, which stream reads need too, for ever: streams are served on the
            # event loop only.
            response.close()
            payload = json.dumps(
                envelope("not_acceptable", "Event streams are served with Accept: text/event-stream")
            ).encode()
            return (
                406,
                [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
                payload,
            )
        try:
            body = b"".join(response)
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
        # Django writes cookies as ("Set-Cookie", " name=value; ...") for WSGI servers, which strip it.
        headers = [(k.lower().encode("latin1"), v.strip().encode("latin1")) for k, v in started["headers"]]
        return started["status"], headers, body

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = await read_body(scope, receive, send)
        if body is None:
            return
        environ = wsgi_environ(scope, body)
        loop = asyncio.get_running_loop()
        response = loop.create_future()

        def deliver(*answer):
            loop.call_soon_threadsafe(lambda: response.done() or response.set_result(answer))

        job = loop.run_in_executor(self.pool, traced(self._respond, environ, deliver))
        await asyncio.wait((response, job), return_when=asyncio.FIRST_COMPLETED)
        if not response.done():
            await job  # the request failed outside Django's handler: its exception goes to the server
            raise RuntimeError("the request ended without a response")
        status, headers, body = response.result()
        scope[ROUTE] = environ.get(ROUTE, UNMATCHED)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        await job
