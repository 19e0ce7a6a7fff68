"""Thin Celery entry points: one call into the runner each."""

import threading

from celery import shared_task
from celery.signals import worker_ready

from everruns.celery import DELIVER_WEBHOOK_TASK, RUN_TURN_TASK
from everruns.startup import freeze_loaded_objects


@shared_task(name=RUN_TURN_TASK, ignore_result=True)
def run_turn(turn_id: str) -> None:
    """Hand the turn to this process's runtime and return: the turn runs as an asyncio task, so a
    few broker threads feed any number of turns (blocks only at WORKER_MAX_TURNS)."""
    # Celery imports this module before Django's apps are ready; the runner needs its models.
    from runner.runtime import runtime  # noqa: PLC0415

    runtime().submit(turn_id)


@shared_task(name=DELIVER_WEBHOOK_TASK, ignore_result=True)
def deliver_webhook(delivery_id: str) -> None:
    """Hand the delivery to this process's webhook sender and return (its attempts run on the sender's threads)."""
    from runner.webhooks.sender import sender  # noqa: PLC0415 - as in run_turn: apps must be ready

    sender().submit(delivery_id)


def on_worker_start() -> None:
    """What a worker process does once when it starts (Celery's worker_ready, or the embedded worker)."""
    from runner import llm  # noqa: PLC0415 - as in run_turn: apps must be ready
    from runner.runtime import runtime  # noqa: PLC0415
    from runner.schedules.scheduler import scheduler  # noqa: PLC0415
    from runner.webhooks.sender import sender  # noqa: PLC0415

    runtime().start_sweeper()
    sender().start_sweeper()
    scheduler().start()
    freeze_loaded_objects()
    # Import litellm now (~5 s) rather than inside the first turn's first LLM call.
    threading.Thread(target=llm.warm_up, name="litellm-warm-up", daemon=True).start()


@worker_ready.connect
def _on_worker_ready(sender=None, **kwargs):
    on_worker_start()
