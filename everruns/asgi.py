import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "everruns.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402

from sessions.sse import StreamRouter  # noqa: E402

# Event streams are served in front of Django's handler (see sessions/sse.py); the rest goes to Django.
application = StreamRouter(django_application)

if settings.EMBEDDED_WORKER:
    from everruns.embedded import start_embedded_worker

    start_embedded_worker(settings.EMBEDDED_WORKER_CONCURRENCY)
