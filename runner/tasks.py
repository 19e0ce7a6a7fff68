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
    from runner.loop import run_turn as run

    run(turn_id, owner=_owner())


@worker_ready.connect
def _start_sweeper(sender=None, **kwargs):
    from runner.recovery import start_sweeper

    start_sweeper()
