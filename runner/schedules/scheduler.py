"""The worker's scheduler: every SCHEDULE_TICK_SECONDS, fire the schedules that are due (agents.schedules.services).

Each worker process runs one (the Procfile needs no `beat` line; `make run`'s embedded worker runs one too). Any
number of them may run: the database decides which one fires a due time, and it fires once."""

import logging
import threading
import time

from django.conf import settings
from django.db import connection

from agents.schedules.services import schedules_fire_due

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self):
        self.started = False

    def start(self) -> None:
        if settings.SCHEDULE_TICK_SECONDS > 0 and not self.started:
            self.started = True
            threading.Thread(target=self._loop, name="scheduler", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(settings.SCHEDULE_TICK_SECONDS)
            try:
                schedules_fire_due()
            except Exception:
                logger.warning("scheduler tick failed", exc_info=True)
                if connection.connection is not None and not connection.is_usable():
                    connection.close()


_scheduler = Scheduler()


def scheduler() -> Scheduler:
    return _scheduler
