"""Settings for the suite: the real settings, on PostgreSQL and Redis unless the environment says otherwise."""

import os
import uuid

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/everruns")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# The suite runs open (AUTH_MODE=none) except where a test asks for API keys; a key of its own for those.
os.environ.setdefault("AUTH_MODE", "none")
os.environ.setdefault("SECRET_KEY", "everruns-test-suite-secret-key-not-for-production-0123456789")
os.environ.setdefault("TURN_SWEEP_SECONDS", "0")
# Turns queued by in-process tests go to a queue no worker reads; the e2e processes use their own.
# One id per run names what the run owns (its database, its queues), so two runs never meet.
RUN_ID = os.environ.setdefault("EVERRUNS_TEST_RUN_ID", uuid.uuid4().hex[:8])
os.environ.setdefault("CELERY_QUEUE", f"inprocess-tests-{RUN_ID}")
# The run's counters (every process of the run counts into these; delete_run_keys removes them).
os.environ.setdefault("METRICS_KEY_PREFIX", f"everruns:metrics:{RUN_ID}")
# A fixed Fernet key for the suite (its subprocesses inherit it); never used outside tests.
os.environ.setdefault("SECRETS_ENCRYPTION_KEY", "xjuHNf168f3SJTauATMJSl3dCAd9VuAm4wuJuupyI38=")
# The fake LLM server (tests/fake_llm_server.py) listens on loopback, which provider base URLs may not reach otherwise.
os.environ.setdefault("LLM_ALLOWED_HOSTS", "127.0.0.1,localhost")
# Webhook receivers started by tests listen on loopback too; retries in fractions of a second, not minutes.
os.environ.setdefault("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("WEBHOOK_RETRY_SCHEDULE", "0.5,1")
os.environ.setdefault("WEBHOOK_TIMEOUT_SECONDS", "2")
os.environ.setdefault("WEBHOOK_SWEEP_SECONDS", "0.5")
os.environ.setdefault("SCHEDULE_TICK_SECONDS", "1")

# The suite's MCP servers (tests/mcp_server.py) listen on loopback too; `localhost` stays refused for the guard's tests.
os.environ.setdefault("MCP_ALLOWED_HOSTS", "127.0.0.1")
# The suite must not depend on real provider keys in the developer's environment, and its broker is
# always REDIS_URL (the fault tests point their own processes at a Redis of their own that way).
for _name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "EVERRUNS_DEFAULT_MODEL", "CELERY_BROKER_URL"):
    os.environ.pop(_name, None)

from everruns.settings import *  # noqa: E402,F401,F403
from everruns.settings import DATABASES  # noqa: E402

DATABASES["default"]["TEST"] = {"NAME": f"test_everruns_{RUN_ID}"}
