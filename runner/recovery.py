"""The stuck-turn sweeper: re-queues turns that no live worker holds.

A turn is stuck when it is queued but nobody took it (the broker lost the message, or was down
when the message was posted), or running with a lease nobody renews (its worker died). Each worker
runs a sweeper; queuing a turn twice is harmless (the lease lets one run it).
"""

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from sessions.models import Turn
from sessions.services import queue_turn

logger = logging.getLogger(__name__)
_started = False


def stuck_turn_ids() -> list:
    waiting = timezone.now() - timedelta(seconds=settings.TURN_QUEUED_GRACE_SECONDS)
    return list(
        Turn.objects.filter(
            Q(status=Turn.Status.QUEUED, created_at__lt=waiting)
            | Q(status=Turn.Status.RUNNING, lease_expires_at__lt=Now())
            | Q(status=Turn.Status.RUNNING, lease_expires_at__isnull=True)
        ).values_list("id", flat=True)[:100]
    )


def sweep() -> int:
    ids = stuck_turn_ids()
    for turn_id in ids:
        logger.warning("re-queuing stuck turn %s", turn_id)
        queue_turn(turn_id)
    return len(ids)


def start_sweeper() -> None:
    global _started
    if _started or settings.TURN_SWEEP_SECONDS <= 0:
        return
    _started = True

    def loop():
        stop = threading.Event()
        while not stop.wait(settings.TURN_SWEEP_SECONDS):
            try:
                sweep()
            except Exception:
                logger.warning("sweep failed", exc_info=True)
            finally:
                connection.close()

    threading.Thread(target=loop, name="turn-sweeper", daemon=True).start()
