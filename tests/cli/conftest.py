"""The command line as a subprocess (`.venv/bin/everruns`, installed by make install) against real servers:
the embedded shape (one uvicorn with its in-process worker) and the Procfile shape (web + Celery worker,
API keys required)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import processes

EVERRUNS = Path(sys.executable).parent / "everruns"


@pytest.fixture(scope="module")
def embedded(django_db_setup, log_dir):
    """`make run`'s shape on the test database: one web process, its worker inside, no Redis."""
    proc, url = processes.start_web(log_dir, **processes.WEB_ENV, EVERRUNS_EMBEDDED_WORKER="true", REDIS_URL="")
    yield url
    proc.stop()


class Cli:
    """Runs `everruns` against one server, with a config directory of its own (never the user's)."""

    def __init__(self, url: str, home: Path, api_key: str | None = None):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EVERRUNS_")}
        self.env.update({"EVERRUNS_URL": url, "XDG_CONFIG_HOME": str(home), "PYTHONUNBUFFERED": "1"})
        if api_key:
            self.env["EVERRUNS_API_KEY"] = api_key

    def run(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(EVERRUNS), *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )

    def json(self, *args: str, **kwargs):
        done = self.run(*args, "--json", **kwargs)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start(self, *args: str) -> "Running":
        return Running([str(EVERRUNS), *args], self.env)


class Running:
    """`everruns` running in the background; its stdout lines collected as they come."""

    def __init__(self, argv: list[str], env: dict):
        self.popen = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.stderr = ""
        self.changed = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_stdout(self) -> None:
        for line in self.popen.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def _read_stderr(self) -> None:
        for line in self.popen.stderr:
            with self.changed:
                self.stderr += line
                self.changed.notify_all()

    def events(self) -> list[dict]:
        with self.changed:
            return [json.loads(line) for line in self.lines]

    def wait_for_event(self, predicate, timeout: float = 30) -> dict:
        """The first event printed (a JSON line) that satisfies `predicate`, waiting for it."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    event = json.loads(line)
                    if predicate(event):
                        return event
                ended = self.popen.poll() is not None and not any(r.is_alive() for r in self.readers)
                if ended or time.monotonic() > deadline:
                    raise AssertionError(f"no such event; stdout={self.lines} stderr={self.stderr}")
                self.changed.wait(0.5)

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C: SIGINT to the process, as a terminal sends it; returns the exit code."""
        self.popen.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def finish(self, timeout: float = 30) -> int:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
            raise
        for reader in self.readers:
            reader.join(5)
        return code


@pytest.fixture
def cli_home(tmp_path) -> Path:
    return tmp_path / "config"


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]
