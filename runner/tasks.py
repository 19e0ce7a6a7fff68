"""Thin Celery entry points: one call into the runner each."""

import os
import socket
import threading

from celery import shared_task
from celery.signals import worker_ready

from everruns.celery import RUN_TURN_TASK
from everruns.ids import uuid7


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid7().hex[-8:]}"


@shared_task(name=RUN_TURN_TASK, ignore_result=True)
def run_turn(turn_id: str) -> None:
    # Celery imports this module before Django's apps are ready; the runner needs its models.
    from runner.loop import run_turn as run  # noqa: PLC0415

    run(turn_id, owner=_owner())


def on_worker_start() -> None:
    """What a worker process does once when it starts (Celery's worker_ready, or the embedded worker)."""
    from runner import llm  # noqa: PLC0415 - as in run_turn: apps must be ready
    from runner.recovery import start_sweeper  # noqa: PLC0415

    start_sweeper()
    # Import litellm now (~5 s) rather than inside the first turn's first LLM call.
    threading.Thread(target=llm.warm_up, name="litellm-warm-up", daemon=True).start()


@worker_ready.connect
def _on_worker_ready(sender=None, **kwargs):
    on_worker_start()
