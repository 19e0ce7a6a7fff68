"""Real processes for end-to-end tests: uvicorn (web) and Celery workers on the test database, and a
Redis of the suite's own for the tests that stop Redis (never the machine's)."""

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# What the session's shared web and worker run with (and the fault tests' own ones, alike).
WORKER_ENV = {"TURN_SWEEP_SECONDS": 1, "TURN_LEASE_SECONDS": 5, "TURN_QUEUED_GRACE_SECONDS": 5}
WEB_ENV = {"SSE_KEEPALIVE_SECONDS": 2, "SSE_POLL_SECONDS": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_env(**extra) -> dict:
    """The environment of a web or worker process: the test database, the run's queue and, unless
    `extra` says otherwise (REDIS_URL of a private Redis), the suite's Redis."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": os.environ["REDIS_URL"],
            "EVERRUNS_EMBEDDED_WORKER": "false",
            "CELERY_QUEUE": f"e2e-{settings.RUN_ID}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Proc:
    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self.log.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def start_web(log_dir: Path, **env) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(
        f"web-{port}",
        [
            str(BIN / "uvicorn"),
            "everruns.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "2",
            "--no-access-log",
        ],
        process_env(**env),
        log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"web exited:\n{proc.output()}")
        try:
            if requests.get(f"{url}/health", timeout=1).status_code in (200, 503):
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"web did not start:\n{proc.output()}")


def procfile_args(process: str, env: dict) -> list[str]:
    """The Procfile's command line for `process`, its `${VAR:-default}`s expanded from `env` as a shell would,
    and `.venv/bin/` meaning this interpreter's directory."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith(f"{process}:"))
    line = line.split(":", 1)[1]
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: str(env.get(m[1]) or m[2]), line)
    args = shlex.split(line)
    return [str(BIN / arg.removeprefix(".venv/bin/")) if arg.startswith(".venv/bin/") else arg for arg in args]


def start_worker(log_dir: Path, name: str = "worker", concurrency: int = 4, **env) -> Proc:
    proc = Proc(
        name,
        [
            str(BIN / "celery"),
            "-A",
            "everruns",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}-{settings.RUN_ID}@%h",  # node names are broker-wide: two runs must not share one
        ],
        process_env(**env),
        log_dir,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"worker exited:\n{proc.output()}")
        if "ready." in proc.output():
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"worker did not start:\n{proc.output()}")


class RedisServer:
    """A Redis of the suite's own on a free port of 127.0.0.1, nothing persisted. A test may stop and
    start it (a Redis restart) without touching the machine's Redis; the fixture that made it stops it."""

    _starts = itertools.count()

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Proc | None = None

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (the fault tests start their own Redis)")
        self.proc = Proc(
            f"redis-{self.port}-{next(self._starts)}",
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no", "--dir", str(self.log_dir)],
            dict(os.environ),
            self.log_dir,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.proc.popen.poll() is not None:
                    raise RuntimeError(f"redis-server exited:\n{self.proc.output()}")
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"redis-server did not start:\n{self.proc.output()}")

    def stop(self) -> None:
        """SIGTERM: Redis shuts down (nothing to save) and closes every client connection."""
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.popen.poll() is None


class McpTestServer:
    """tests/mcp_server.py (the SDK's FastMCP) in a process of its own on a free loopback port, with the JSON lines
    log of what it saw. `kill()` stops it at once (a server gone mid-call); the fixture that made it stops it."""

    PATHS = {"streamable-http": "/mcp", "sse": "/sse"}

    def __init__(self, log_dir: Path, transport: str = "streamable-http", port: int | None = None):
        self.transport = transport
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}{self.PATHS[transport]}"
        self.log_path = log_dir / f"mcp-{self.port}.jsonl"
        self.log_path.write_text("")
        self.proc = Proc(
            f"mcp-{self.port}",
            [sys.executable, "-m", "tests.mcp_server", "--port", str(self.port), "--transport", transport]
            + ["--log", str(self.log_path)],
            dict(os.environ),
            log_dir,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.popen.poll() is not None:
                raise RuntimeError(f"MCP server exited:\n{self.proc.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.proc.kill()
        raise RuntimeError(f"MCP server did not start:\n{self.proc.output()}")

    def seen(self, event: str | None = None, tool: str | None = None) -> list[dict]:
        entries = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
        return [e for e in entries if (event is None or e["event"] == event) and (tool is None or e["tool"] == tool)]

    def kill(self) -> None:
        self.proc.kill()

    @property
    def transport_field(self) -> str:
        return self.transport.replace("-", "_")
