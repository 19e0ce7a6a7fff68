"""The embedded quick start: a Celery worker on the in-memory broker, inside the web process."""

import logging
import threading

from agents.secrets import mask_url_credentials

logger = logging.getLogger(__name__)
_started = False
_lock = threading.Lock()


def start_embedded_worker(concurrency: int) -> None:
    global _started
    with _lock:
        if _started:
            return
        _started = True
    # Only the embedded quick start pays for the worker machinery and the runner.
    from celery.worker import WorkController  # noqa: PLC0415

    from everruns.celery import app  # noqa: PLC0415

    app.loader.import_default_modules()
    worker = WorkController(
        app=app,
        hostname="embedded@localhost",
        pool="threads",
        concurrency=concurrency,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    threading.Thread(target=worker.start, name="embedded-celery-worker", daemon=True).start()
    # Celery's worker_ready signal does not fire for a WorkController started this way.
    from runner.tasks import on_worker_start  # noqa: PLC0415 - web processes import no runner code

    on_worker_start()
    broker = mask_url_credentials(app.conf.broker_url or "")
    logger.info("embedded Celery worker started (threads=%d, broker=%s)", concurrency, broker)
