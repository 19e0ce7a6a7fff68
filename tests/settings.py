"""Settings for the suite: the real settings, on PostgreSQL and Redis unless the environment says otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/everruns")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("TURN_SWEEP_SECONDS", "0")
# Turns queued by in-process tests go to a queue no worker reads; the e2e processes use their own.
os.environ.setdefault("CELERY_QUEUE", "inprocess-tests")

from everruns.settings import *  # noqa: E402,F401,F403
