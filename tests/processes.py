"""Real processes for end-to-end tests: uvicorn (web) and Celery workers, on the test database."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_env(**extra) -> dict:
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
            f"{name}@%h",
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
