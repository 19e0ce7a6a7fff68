"""The one Celery app. Producers queue turns by task name; only workers import the runner."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "everruns.settings")

app = Celery("everruns")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["runner"])

RUN_TURN_TASK = "runner.run_turn"
DELIVER_WEBHOOK_TASK = "runner.deliver_webhook"
