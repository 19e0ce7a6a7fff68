import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "everruns.settings")

application = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.EMBEDDED_WORKER:
    from everruns.embedded import start_embedded_worker

    start_embedded_worker(settings.EMBEDDED_WORKER_CONCURRENCY)
