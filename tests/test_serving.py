"""The web process as the Procfile starts it (a real uvicorn): the open API refuses a network bind unless
told otherwise, `make run`'s loopback bind starts, and connections that send nothing, trickle their headers
or pass the h11 and concurrency limits are closed or refused within the bounds the Procfile sets."""

import os
import re
import socket
import subprocess
import time

import pytest
import requests

from tests.processes import BIN, ROOT, Proc, free_port, process_env, procfile_args

pytestmark = pytest.mark.e2e

# The Procfile binds 0.0.0.0; these tests bind an address no machine has (TEST-NET-1) instead, so that even a
# broken check would never listen on the network: uvicorn loads the application, then fails to bind.
NO_MACHINES_ADDRESS = "192.0.2.1"


def open_env(tmp_path, **extra) -> dict:
    """The quick start's environment: no REDIS_URL, no AUTH_MODE (so AUTH_MODE=none), SQLite."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AUTH_MODE", "ALLOW_OPEN_ON_NETWORK")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "everruns.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "EVERRUNS_EMBEDDED_WORKER": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def procfile_web(port: int, host: str) -> list[str]:
    args = procfile_args("web", {"PORT": port})
    assert args[args.index("--host") + 1] == "0.0.0.0"
    args[args.index("--host") + 1] = host
    return args


def run_briefly(args: list[str], env: dict) -> tuple[int, str]:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_the_procfile_web_without_redis_refuses_to_serve_the_open_api_on_the_network(tmp_path):
    code, output = run_briefly(procfile_web(free_port(), NO_MACHINES_ADDRESS), open_env(tmp_path))
    assert code != 0
    assert f"AUTH_MODE=none (an open API, no keys) refuses to serve on {NO_MACHINES_ADDRESS}" in output
    assert "ALLOW_OPEN_ON_NETWORK=true" in output
    assert "Application startup complete" not in output


def test_the_procfile_web_serves_the_open_api_on_the_network_when_allowed(tmp_path):
    env = open_env(tmp_path, ALLOW_OPEN_ON_NETWORK="true")
    code, output = run_briefly(procfile_web(free_port(), NO_MACHINES_ADDRESS), env)
    assert "refuses to serve" not in output
    assert "Application startup complete" in output  # then the bind to an address nobody has fails
    assert "error while attempting to bind" in output and code != 0


def start(args: list[str], env: dict, tmp_path, port: int) -> Proc:
    proc = Proc(f"web-{port}", args, env, tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"web exited:\n{proc.output()}")
        try:
            requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"web did not start:\n{proc.output()}")


def test_make_runs_loopback_bind_serves_the_open_api(tmp_path):
    port = free_port()
    makefile = (ROOT / "Makefile").read_text()
    assert "--host 127.0.0.1 --port $(PORT)" in makefile
    args = [str(BIN / "uvicorn"), "everruns.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    proc = start(args, open_env(tmp_path), tmp_path, port)
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert answer.status_code != 403 and "status" in answer.json()  # served, not refused (no migrations here)
        assert "refuses to serve" not in proc.output()
    finally:
        proc.stop()


HEADER_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def procfile_web_on_loopback(tmp_path_factory):
    """The Procfile's web line (with --host 127.0.0.1), a 2 s header time-out and room for 4 connections."""
    port = free_port()
    env = process_env(WEB_HEADER_TIMEOUT_SECONDS=HEADER_TIMEOUT, WEB_MAX_CONNECTIONS=4)
    env["PORT"] = str(port)
    args = procfile_args("web", env)
    args[args.index("--host") + 1] = "127.0.0.1"
    proc = start(args, env, tmp_path_factory.mktemp("serving"), port)
    yield port
    proc.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes the connection (reads until EOF; a reset counts as closed)."""
    started = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(procfile_web_on_loopback):
    with connect(procfile_web_on_loopback) as sock:
        waited = closed_after(sock)
    assert HEADER_TIMEOUT - 0.5 < waited < HEADER_TIMEOUT + 3


def test_a_connection_that_trickles_its_headers_is_closed_after_the_header_timeout(procfile_web_on_loopback):
    with connect(procfile_web_on_loopback) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        try:
            while time.monotonic() - started < HEADER_TIMEOUT + 5:
                sock.sendall(b"a")
                time.sleep(0.25)
        except (BrokenPipeError, ConnectionResetError):
            pass
        waited = closed_after(sock) + (time.monotonic() - started)
    assert waited < HEADER_TIMEOUT + 3


def request_on(sock: socket.socket) -> bytes:
    """The status line of a request that needs no database (a 404 from Django)."""
    sock.sendall(b"GET /no-such-route HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    while length and len(body) < int(length[1]):  # the whole response, so the next one starts clean
        body += sock.recv(65536) or b"x" * int(length[1])
    return head.split(b"\r\n", 1)[0]


def test_a_kept_alive_connection_outlives_common_clients_pool_expiry(procfile_web_on_loopback):
    """Idle past httpx's 5 s (but far below --timeout-keep-alive 75), a kept-alive connection still serves:
    the client closes idle connections first, so it never reuses one the server is closing."""
    with connect(procfile_web_on_loopback) as sock:
        assert request_on(sock) == b"HTTP/1.1 404 Not Found"
        time.sleep(6)
        assert request_on(sock) == b"HTTP/1.1 404 Not Found"


def test_a_header_block_over_the_h11_limit_is_refused(procfile_web_on_loopback):
    with connect(procfile_web_on_loopback) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000)  # not yet complete
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")


def test_connections_over_the_concurrency_limit_get_503(procfile_web_on_loopback):
    with connect(procfile_web_on_loopback) as sock:
        assert request_on(sock) == b"HTTP/1.1 404 Not Found"
    held = [connect(procfile_web_on_loopback) for _ in range(4)]
    try:
        time.sleep(0.3)
        with connect(procfile_web_on_loopback) as extra:
            assert request_on(extra) == b"HTTP/1.1 503 Service Unavailable"
    finally:
        for sock in held:
            sock.close()
