"""Everruns settings. Every value comes from the environment here and is listed in README.md."""

import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


# litellm must never fetch its price list from the internet at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

DEVELOPMENT_SECRET_KEY = "everruns-insecure-dev-key-change-me"
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)

# --- Access: open for the embedded quick start (which listens on 127.0.0.1 only), API keys otherwise ---
AUTH_MODE = os.environ.get("AUTH_MODE") or ("api_key" if os.environ.get("REDIS_URL") else "none")
if AUTH_MODE not in ("none", "api_key"):
    raise ImproperlyConfigured(f"AUTH_MODE must be none or api_key, not {AUTH_MODE!r}")
if AUTH_MODE == "api_key" and (DEBUG or SECRET_KEY == DEVELOPMENT_SECRET_KEY):
    raise ImproperlyConfigured(
        "AUTH_MODE=api_key (the production shape) refuses to start with DEBUG on or the development SECRET_KEY: "
        "set SECRET_KEY to a long random value and DEBUG=false"
    )
_default_hosts = "localhost,127.0.0.1,[::1]" if AUTH_MODE == "none" else "*"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", _default_hosts).split(",") if h.strip()]
# Writes (POST, PUT, PATCH, DELETE) per API key per minute, counted in Redis across web processes.
WRITE_RATE_LIMIT = env_int("WRITE_RATE_LIMIT", 300)
MAX_STREAMS_PER_PROCESS = env_int("MAX_STREAMS_PER_PROCESS", 5000)
# Streams opened with a key's stream tokens count against that key.
MAX_STREAMS_PER_KEY = env_int("MAX_STREAMS_PER_KEY", 100)
MAX_TURNS_PER_KEY = env_int("MAX_TURNS_PER_KEY", 200)
STREAM_TOKEN_TTL_SECONDS = env_int("STREAM_TOKEN_TTL_SECONDS", 900)
# A web process trusts a key it found valid for this long before reading its row again (revocation delay).
API_KEY_CACHE_SECONDS = min(max(env_float("API_KEY_CACHE_SECONDS", 2.0), 0.0), 60.0)
CORS_ALLOWED_ORIGINS = [o.strip() for o in os.environ.get("CORS_ALLOWED_ORIGINS", "").split(",") if o.strip()]
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "everruns.apps.EverrunsConfig",
    "agents.apps.AgentsConfig",
    "sessions.apps.SessionsConfig",
    "runner.apps.RunnerConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (the admin's and Swagger UI's files) from the web process itself, offline.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "everruns.api.auth.ApiAuthMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "everruns.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The debug pages and the admin's overrides.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "everruns.asgi.application"

# --- Database: DATABASE_URL, SQLite for the embedded quick start -----------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
# Web requests run on WEB_THREADS long-lived threads and a worker's database steps on
# WORKER_DB_THREADS: each thread keeps its connection, so connections are bounded and reused.
WEB_THREADS = env_int("WEB_THREADS", 8)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600))}
# The written-out SQL as server-side prepared statements (everruns/core/prepared.py); off behind a pooler that hands a
# session's statements to different server connections (PgBouncer in transaction pooling mode).
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded worker thread and the web share one file: WAL and immediate write locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery ---------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED_WORKER = env_bool("EVERRUNS_EMBEDDED_WORKER", not REDIS_URL)
EMBEDDED_WORKER_CONCURRENCY = env_int("EVERRUNS_EMBEDDED_WORKER_CONCURRENCY", 4)

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Turns are acknowledged when they start. Durability comes from the database, not the broker: a
# turn whose worker dies is re-queued by the sweeper once its lease expires (runner/runtime.py, sessions/turns.py).
# Holding an unacked message for a whole turn buys nothing, and with kombu 5.7 a Redis restart while
# a message is unacked kills the worker ("Unrecoverable error: 'NoneType' object has no attribute
# 'hostname'" while restoring unacked messages).
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A turn running longer than this is handed to a second worker by the Redis broker.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
if CELERY_BROKER_URL.startswith("memory://"):
    # The in-memory transport polls its queue; kombu's default of 1 s would add ~1 s to every turn.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = env_float("EMBEDDED_BROKER_POLL_SECONDS", 0.01)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- django-eventstream: its listeners carry live events; Redis pub/sub between processes --------
if REDIS_URL:
    _redis = urlparse(REDIS_URL)
    EVENTSTREAM_REDIS = {
        "host": _redis.hostname or "127.0.0.1",
        "port": _redis.port or 6379,
        "db": int((_redis.path or "/0").lstrip("/") or 0),
        "password": _redis.password,
    }
SSE_KEEPALIVE_SECONDS = env_float("SSE_KEEPALIVE_SECONDS", 15.0)
# Streams re-read the log whenever the Redis listener (re)subscribes; besides, an idle stream
# re-checks the log this often, a safety net for a wake-up lost some other way.
SSE_POLL_SECONDS = env_float("SSE_POLL_SECONDS", 30.0)

# --- The runner ---------------------------------------------------------------------------------
EVERRUNS_DEFAULT_MODEL = os.environ.get("EVERRUNS_DEFAULT_MODEL", "")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 120.0)
TURN_MAX_ITERATIONS = env_int("TURN_MAX_ITERATIONS", 10)
# A worker process runs its turns as asyncio tasks (runner/runtime.py): this many at once at most,
# their database steps on this many threads (one persistent connection each), tools on their own threads.
WORKER_MAX_TURNS = env_int("WORKER_MAX_TURNS", 1000)
WORKER_DB_THREADS = env_int("WORKER_DB_THREADS", 4)
WORKER_TOOL_THREADS = env_int("WORKER_TOOL_THREADS", 16)

# --- API ----------------------------------------------------------------------------------------
# `/bench/ping`, a trivial view for the benchmark's framework floor (bench/run.py sets it; off in production).
BENCH_ROUTES = env_bool("EVERRUNS_BENCH_ROUTES", False)
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "everruns.api.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": ["everruns.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Everruns API",
    "DESCRIPTION": "Durable runtime for AI agents.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # With AUTH_MODE=api_key the document says what every /v1 operation needs (a bearer API key) and may
    # answer because of it (401, 403, 429); with AUTH_MODE=none it says neither, as the server does.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "everruns.api.schema.add_access_control",
    ],
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "agents.models.Agent.Status",
        "SessionStatusEnum": "sessions.models.Session.Status",
        "LlmStatusEnum": "agents.models.LlmProvider.Status",
    },
}
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 4 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# A list page stops adding items once its items pass this many bytes of JSON (at least one item is
# always sent); an SSE replay sends the history in batches of at most this size.
MAX_PAGE_BYTES = env_int("MAX_PAGE_BYTES", 8 * 1024 * 1024)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Static files (the admin's and Swagger UI's): served by WhiteNoise from the web process ------
STATIC_URL = "static/"
# The debug pages' stylesheet and scripts (static/debug/), besides the installed apps' own files.
STATICFILES_DIRS = [BASE_DIR / "static"]
# `manage.py collectstatic` (run by `make run` and the Procfile's release step) copies them here,
# with a gzip copy of each; WhiteNoise then serves this directory. A web process started where
# collectstatic never ran serves them straight from the installed apps instead (uncompressed; WhiteNoise
# then warns "No directory at: .../staticfiles/" once at start-up), so no shape of deployment is left
# with a blank Swagger UI or an unstyled admin.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
WHITENOISE_USE_FINDERS = not STATIC_ROOT.is_dir()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Plain names (no content hash): pages never depend on collectstatic having run.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"redact_secrets": {"()": "agents.secrets.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # A logger's own filters see every record logged on it before any handler does, litellm's own handler
    # (added when litellm is imported) included; a filter on the root handler would not. These are all the
    # loggers litellm logs on by name (its module loggers, `litellm.*`, have no handler and reach the root's).
    "loggers": {
        "LiteLLM": {"level": "WARNING", "filters": ["redact_secrets"]},
        "LiteLLM Router": {"filters": ["redact_secrets"]},
        "LiteLLM Proxy": {"filters": ["redact_secrets"]},
        "LiteLLM Proxy.stdout": {"filters": ["redact_secrets"]},
        "httpx": {"level": "WARNING"},
    },
}

# --- Durability ---------------------------------------------------------------------------------
# A running turn whose lease is not renewed for this long is taken over by another worker.
TURN_LEASE_SECONDS = env_float("TURN_LEASE_SECONDS", 30.0)
# A queued turn that no worker has taken after this long is queued again.
TURN_QUEUED_GRACE_SECONDS = env_float("TURN_QUEUED_GRACE_SECONDS", 60.0)
TURN_SWEEP_SECONDS = env_float("TURN_SWEEP_SECONDS", 10.0)

# --- Session files and tools --------------------------------------------------------------------
SESSION_FILE_MAX_BYTES = env_int("SESSION_FILE_MAX_BYTES", 10 * 1024 * 1024)
SESSION_FS_MAX_BYTES = env_int("SESSION_FS_MAX_BYTES", 100 * 1024 * 1024)
# Entries (files and directories) of one session, and levels below the root a path may have.
SESSION_FS_MAX_FILES = env_int("SESSION_FS_MAX_FILES", 10_000)
SESSION_FS_MAX_DEPTH = env_int("SESSION_FS_MAX_DEPTH", 32)
# The time one grep_files call may take over all the files it reads.
SESSION_FS_GREP_SECONDS = env_float("SESSION_FS_GREP_SECONDS", 10.0)
TOOL_TIMEOUT_SECONDS = env_float("TOOL_TIMEOUT_SECONDS", 30.0)
WEB_FETCH_ALLOWED_HOSTS = [
    h.strip().lower() for h in os.environ.get("WEB_FETCH_ALLOWED_HOSTS", "").split(",") if h.strip()
]
WEB_FETCH_MAX_BYTES = env_int("WEB_FETCH_MAX_BYTES", 2 * 1024 * 1024)
WEB_FETCH_CONNECT_TIMEOUT = env_float("WEB_FETCH_CONNECT_TIMEOUT", 5.0)
WEB_FETCH_TIMEOUT = env_float("WEB_FETCH_TIMEOUT", 20.0)
WEB_FETCH_MAX_REDIRECTS = env_int("WEB_FETCH_MAX_REDIRECTS", 5)

# --- Provider keys and LLM calls ----------------------------------------------------------------
SECRETS_ENCRYPTION_KEY = os.environ.get("SECRETS_ENCRYPTION_KEY", "")
SECRETS_ENCRYPTION_KEY_PREVIOUS = [
    k.strip() for k in os.environ.get("SECRETS_ENCRYPTION_KEY_PREVIOUS", "").split(",") if k.strip()
]
# Host names (or host:port) of private LLM servers that providers' base URLs may reach (a local vLLM or
# Ollama); every other base URL must resolve to public addresses only (everruns/core/netguard.py).
LLM_ALLOWED_HOSTS = [h.strip().lower() for h in os.environ.get("LLM_ALLOWED_HOSTS", "").split(",") if h.strip()]
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 3)
LLM_RETRY_BASE_MS = env_int("LLM_RETRY_BASE_MS", 1000)
LLM_RETRY_MAX_MS = env_int("LLM_RETRY_MAX_MS", 30000)

# --- Web security (issue 17: streams' memory, the OpenAPI document; docs/security.md) ---------
# What one open stream holds of its body at most before its reader takes it (a batch of the log; an event larger
# than this comes alone, whole): a stalled reader costs about this much, whatever the session's history.
SSE_STREAM_BUFFER_BYTES = env_int("SSE_STREAM_BUFFER_BYTES", 256 * 1024)
# `/api-doc/openapi.json` and `/swagger-ui/` without credentials (true), or only with an API key or a staff login.
OPENAPI_PUBLIC = env_bool("OPENAPI_PUBLIC", True)

# --- Serving (docs/security.md) ------------------------------------------------------------
# AUTH_MODE=none refuses to serve on a non-loopback address (everruns/front/serving.py) unless this says the
# network is the operator's alone.
ALLOW_OPEN_ON_NETWORK = env_bool("ALLOW_OPEN_ON_NETWORK", False)
# The request line and headers must arrive within this many seconds of a connection's opening (or of a
# further request's first byte); the Procfile's `--http everruns.front.serving:H11Protocol` enforces it.
WEB_HEADER_TIMEOUT_SECONDS = env_float("WEB_HEADER_TIMEOUT_SECONDS", 10.0)

# --- TLS behind a proxy (docs/security.md): off by default, so `make run` over plain HTTP works ------
# `X-Forwarded-Proto,https`: the header (as the proxy sends it) and value that mean the client used HTTPS.
# Only behind a proxy that sets it on every request and strips a client's own.
_proxy_ssl_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "")
if _proxy_ssl_header:
    _name, _, _value = _proxy_ssl_header.partition(",")
    if not _name.strip() or not _value.strip():
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be `Header-Name,value`, e.g. X-Forwarded-Proto,https")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _name.strip().upper().replace("-", "_"), _value.strip())
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# A load balancer's health probe over plain HTTP gets its answer, not a redirect.
SECURE_REDIRECT_EXEMPT = [r"^health$"]

# --- Webhooks (sessions/webhooks, runner/webhooks) ------------------------------------------------
# Seconds to wait before each retry of a delivery that failed; after the last one it is `failed`.
WEBHOOK_RETRY_SCHEDULE = [
    float(s) for s in os.environ.get("WEBHOOK_RETRY_SCHEDULE", "5,30,120,600,1800,3600,10800").split(",") if s.strip()
]
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0)
# Private hosts (or host:port) that webhook URLs may reach; every other target must be public (netguard).
WEBHOOK_ALLOWED_HOSTS = [h.strip().lower() for h in os.environ.get("WEBHOOK_ALLOWED_HOSTS", "").split(",") if h.strip()]
# Attempts in flight at once per webhook (all workers together), and threads per worker that send.
WEBHOOK_MAX_IN_FLIGHT = env_int("WEBHOOK_MAX_IN_FLIGHT", 2)
WEBHOOK_SENDER_THREADS = env_int("WEBHOOK_SENDER_THREADS", 8)
# How often each worker sends deliveries that are due (retries, and any whose wake-up was lost).
WEBHOOK_SWEEP_SECONDS = env_float("WEBHOOK_SWEEP_SECONDS", 2.0)

# --- Schedules (agents/schedules, runner/schedules) -----------------------------------------------
# How often each worker fires the schedules that are due (0: never; one worker is enough, any number is safe).
SCHEDULE_TICK_SECONDS = env_float("SCHEDULE_TICK_SECONDS", 5.0)

# --- MCP tool servers (agents/mcp, everruns/mcp) --------------------------------------------------
# Host names (or host:port) of private MCP servers that McpServer URLs may reach; every other URL must
# resolve to public addresses only (everruns/core/netguard.py), checked when saved and at every connect.
MCP_ALLOWED_HOSTS = [h.strip().lower() for h in os.environ.get("MCP_ALLOWED_HOSTS", "").split(",") if h.strip()]
# The most one MCP answer (a tool list, a tool result) may hold; a larger one is a tool error.
MCP_MAX_RESULT_BYTES = env_int("MCP_MAX_RESULT_BYTES", 1024 * 1024)
# Seconds to connect to an MCP server and open its session (at most the server's own time-out).
MCP_CONNECT_TIMEOUT_SECONDS = env_float("MCP_CONNECT_TIMEOUT_SECONDS", 10.0)

# --- Context compaction (runner/compaction, docs/compaction.md) ---------------------------------
# The share of the model's window past which a turn compacts what the model sees before its next LLM call.
COMPACTION_THRESHOLD = min(0.95, max(0.1, env_float("COMPACTION_THRESHOLD", 0.8)))

# --- Input bounds (security review III: docs/security.md) ---------------------------------------
# Levels of nested arrays and objects a JSON request body may have (every /v1 body and the chat routes).
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", 64)
# Messages one AG-UI or AI SDK chat request may carry (front-ends send the whole conversation each time).
CHAT_MAX_MESSAGES = env_int("CHAT_MAX_MESSAGES", 1000)
# Tool calls stuck past their time limit whose threads a worker replaces (runner/toolexec.py ToolPool): a
# worker runs at most WORKER_TOOL_THREADS + WORKER_TOOL_STUCK_MAX tool threads.
WORKER_TOOL_STUCK_MAX = env_int("WORKER_TOOL_STUCK_MAX", 8)

# --- Observability (everruns/telemetry/, docs/observability.md) ----------------------------------------
# GET /metrics in api_key mode: this bearer token, or an admin key.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Where every process's counters meet in Redis (one hash, and per-process gauges with a TTL).
METRICS_KEY_PREFIX = os.environ.get("METRICS_KEY_PREFIX", "everruns:metrics")
# Traces: OTLP/HTTP to this endpoint (the exporter reads the other standard OTEL_* settings itself); unset, none.
OTEL_EXPORTER_OTLP_ENDPOINT = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
OTEL_SERVICE_NAME = os.environ.get("OTEL_SERVICE_NAME", "everruns")
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = env_bool(
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", False
)
