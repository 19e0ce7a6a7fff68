"""The stuck-turn sweeper: re-queues turns that no live worker holds.

A turn is stuck when it is queued but nobody took it (the broker lost the message, or was down
when the message was posted), or running with a lease nobody renews (its worker died). Each worker
runs a sweeper; queuing a turn twice is harmless (the lease lets one run it).
"""

import logging
import threading

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Now

from sessions.models import Turn
from sessions.services import queue_deadline, queue_turn

logger = logging.getLogger(__name__)
_started = False


def sweep() -> int:
    """Re-queue turns whose deadline passed: queued ones no worker took in time, running ones whose
    lease was not renewed. The deadline is pushed ahead and the lease released in the same
    statement, so a turn is re-queued at most once per grace period, however many workers sweep."""
    with transaction.atomic():
        ids = list(
            Turn.objects.select_for_update(skip_locked=True)
            .filter(status__in=Turn.ACTIVE)
            .filter(Q(lease_expires_at__lt=Now()) | Q(lease_expires_at__isnull=True))
            .values_list("id", flat=True)[:100]
        )
        if ids:
            Turn.objects.filter(pk__in=ids).update(lease_owner="", lease_expires_at=queue_deadline())
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
