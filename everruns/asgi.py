"""The ASGI application: event streams, the chat front-ends' routes and GET session on the event loop
(sessions/streams/sse.py, sessions/chat/sse.py, sessions/reads.py), everything else through Django's handler on a
bounded pool of threads (everruns/front/bridge.py)."""

import logging
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "everruns.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from everruns.api.limits import stream_slots  # noqa: E402
from everruns.front import serving  # noqa: E402
from everruns.front.bridge import DjangoBridge  # noqa: E402
from everruns.front.cors import Cors  # noqa: E402
from everruns.front.counted import Counted  # noqa: E402
from everruns.startup import freeze_loaded_objects  # noqa: E402
from everruns.telemetry import counters  # noqa: E402
from sessions.chat.sse import ChatRouter  # noqa: E402
from sessions.reads import ReadRouter  # noqa: E402
from sessions.streams.sse import StreamRouter  # noqa: E402

application = Counted(Cors(ChatRouter(StreamRouter(ReadRouter(DjangoBridge())))))
counters.gauge("stream_clients", lambda: stream_slots.total)  # everruns_stream_clients, summed over web processes

if settings.AUTH_MODE == "none" and not settings.ALLOW_OPEN_ON_NETWORK:
    # Before the embedded worker starts: a refused process does nothing.
    if refusal := serving.open_bind_refusal(sys.argv, os.environ):
        raise ImproperlyConfigured(refusal)
    application = serving.LoopbackOnly(application)

if settings.AUTH_MODE == "none":
    logging.getLogger("everruns").warning(
        "AUTH_MODE=none: /v1 is open to anyone who can reach this port (make run listens on 127.0.0.1 only). "
        "Set AUTH_MODE=api_key to require API keys."
    )

if settings.EMBEDDED_WORKER:
    from everruns.embedded import start_embedded_worker

    start_embedded_worker(settings.EMBEDDED_WORKER_CONCURRENCY)

freeze_loaded_objects()
