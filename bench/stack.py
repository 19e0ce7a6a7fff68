"""The processes a benchmark measures: PostgreSQL, Redis, and the Procfile's web and worker.

`private` services (the default where the binaries exist) are a PostgreSQL cluster and a Redis server
of the bench's own, on free loopback ports in a temporary directory. Nothing else uses them, so the
CPU of all their processes is the CPU of the load, and a benchmark that exhausts connections cannot
hurt anyone else. `shared` services are the ones on 5432/6379:
a per-run database and Redis db, with PostgreSQL's CPU only sampled (see Sampler in metrics.py).

Each scenario gets a fresh database (a copy of a template migrated once), a Celery queue of its own and
fresh web/worker processes started from the Procfile's own command lines, so a scenario stopped at its
time cap leaves nothing queued or running for the next one.
"""

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import redis

from bench import procs

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
BENCH_QUEUE_PREFIX = "bench-"
WEB_APP_NAME = "everruns-bench-web"
WORKER_APP_NAME = "everruns-bench-worker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile() -> dict[str, str]:
    """The Procfile's process types and command lines, bound to loopback (the bench never listens wider)."""
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            out[name.strip()] = re.sub(r"--host\s+\S+", "--host 127.0.0.1", command.strip())
    return out


class Proc:
    """A child process in its own process group, its output in a log file."""

    def __init__(self, name: str, command: str, env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        # `exec` so that the pid is the program's own, not a shell's: /proc figures are read from it.
        self.popen = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group, no grace: a crash, as the chaos run makes them."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(10)
        self._log.close()

    def stop(self, grace: float = 5.0) -> None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            if self.popen.poll() is not None:
                break
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


def drop_queue_keys(redis_url: str, queue: str) -> None:
    """Delete a deployment's broker keys (its queue and kombu's bindings for it), and nothing else."""
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)


def _as_postgres_user() -> dict:
    """initdb and postgres refuse to run as root: run them as the `postgres` account then."""
    if os.geteuid() != 0:
        return {}
    account = pwd.getpwnam("postgres")
    return {"user": account.pw_uid, "group": account.pw_gid}


def private_services_available() -> bool:
    return (PG_BIN / "initdb").exists() and shutil.which("redis-server") is not None


class PrivateServices:
    kind = "private"
    pg_cpu_method = "all processes of the bench's own PostgreSQL cluster (live ones plus reaped backends)"
    redis_cpu_method = "the bench's own redis-server"

    def __init__(self, workdir: Path):
        self.dir = workdir / "services"
        self.dir.mkdir()
        self.pg_port, self.redis_port = free_port(), free_port()
        data = self.dir / "pgdata"
        data.mkdir()
        owner = _as_postgres_user()
        if owner:
            workdir.chmod(0o755)  # mkdtemp makes it 0700: the postgres account must reach its data below it
            os.chown(self.dir, owner["user"], owner["group"])
            os.chown(data, owner["user"], owner["group"])
        initdb = subprocess.run(
            [PG_BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
            capture_output=True,
            text=True,
            **owner,
        )
        if initdb.returncode:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
        self._data, self._owner = data, owner
        self.postgres = self._start_postgres()
        self.redis = self._start_redis()
        self._wait_up()

    def _start_postgres(self) -> subprocess.Popen:
        # The shared server's settings (Debian defaults): 100 connections, 128 MB of shared buffers.
        return subprocess.Popen(
            [PG_BIN / "postgres", "-D", self._data, "-p", str(self.pg_port), "-k", self.dir]
            + ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100", "-c", "shared_buffers=128MB"],
            stdout=open(self.dir / "postgres.log", "ab"),  # appended: a restart keeps the earlier lines
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._owner,
        )

    def _start_redis(self) -> subprocess.Popen:
        # No persistence: a restart comes back empty (queued broker messages are gone, as on a real restart of
        # a cache-only Redis), which is what the sweeper must recover from.
        return subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", str(self.dir)],
            stdout=open(self.dir / "redis.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def restart_postgres(self, pause: float) -> dict:
        """Fast shutdown (every connection dropped, open transactions rolled back), `pause` seconds down, then
        the same cluster on the same port again. Returns the seconds it was stopping, down and starting."""
        return self._restart("postgres", signal.SIGINT, self._start_postgres, pause)

    def restart_redis(self, pause: float) -> dict:
        return self._restart("redis", signal.SIGTERM, self._start_redis, pause)

    def _restart(self, attribute: str, sig, start, pause: float) -> dict:
        began = time.monotonic()
        child = getattr(self, attribute)
        child.send_signal(sig)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
        stopped = time.monotonic()
        time.sleep(pause)
        setattr(self, attribute, start())
        self._wait_up()
        up = time.monotonic()
        return {"stopping_s": stopped - began, "down_s": up - stopped, "total_s": up - began}

    def log_paths(self) -> list[Path]:
        return [self.dir / "postgres.log", self.dir / "redis.log"]

    def _wait_up(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                psycopg2.connect(self.admin_dsn()).close()
                redis.Redis(port=self.redis_port).ping()
                return
            except (psycopg2.OperationalError, redis.ConnectionError):
                time.sleep(0.1)
        raise RuntimeError(f"private PostgreSQL/Redis did not start; see {self.dir}")

    def admin_dsn(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/{name}"

    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def drop_queue(self, queue: str) -> None:
        drop_queue_keys(self.redis_url(), queue)

    def redis_pid(self) -> int:
        return self.redis.pid

    def pg_cpu(self) -> float | None:
        return procs.tree_cpu(self.postgres.pid)

    def close(self) -> None:
        for child, sig in ((self.postgres, signal.SIGINT), (self.redis, signal.SIGTERM)):
            if child.poll() is None:
                child.send_signal(sig)  # SIGINT: PostgreSQL's fast shutdown
        for child in (self.postgres, self.redis):
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class SharedServices:
    """The PostgreSQL and Redis already running (shared with test runs): never flushed, never restarted."""

    kind = "shared"
    pg_cpu_method = "backends of the bench database sampled every 0.25 s (misses connections shorter than that)"
    redis_cpu_method = "the shared redis-server, which other users may load too"

    def __init__(self, pg_admin_dsn: str, redis_url: str):
        self._admin = pg_admin_dsn
        self._redis = redis_url

    def admin_dsn(self) -> str:
        return self._admin

    def database_url(self, name: str) -> str:
        return self._admin.rsplit("/", 1)[0] + f"/{name}"

    def redis_url(self) -> str:
        return self._redis

    def drop_queue(self, queue: str) -> None:
        drop_queue_keys(self._redis, queue)

    def redis_pid(self) -> int | None:
        try:
            return int(redis.Redis.from_url(self._redis).info("server")["process_id"])
        except (redis.RedisError, KeyError, ValueError):
            return None

    def pg_cpu(self) -> float | None:
        return None  # sampled by the Sampler instead

    def close(self) -> None:
        pass


@dataclass
class Deployment:
    """What one scenario measures: a base URL and, when the bench started them, the processes behind it."""

    base_url: str
    web: Proc | None = None
    workers: list[Proc] = field(default_factory=list)
    database: str | None = None
    queue: str | None = None
    services: object | None = None
    web_pid: int | None = None
    worker_pids: list[int] = field(default_factory=list)
    started: dict = field(default_factory=dict)  # start-up figures of the processes the bench started
    log_dir: Path | None = None
    worker_env: dict = field(default_factory=dict)  # the environment its workers were started with

    @property
    def managed(self) -> bool:
        return self.web is not None


class Stack:
    """A managed run: services, a template database migrated once, then per-scenario databases and processes."""

    def __init__(self, services, workdir: Path, run_id: str):
        self.services = services
        self.workdir = workdir
        self.run_id = run_id
        self.template = f"everruns_bench_{run_id}_template"
        self._counter = 0
        self._databases: list[str] = []
        # The production shape runs with AUTH_MODE=api_key (its default with REDIS_URL): a secret key of its own
        # and an admin API key made in the template, so every request pays for its key as in production.
        self.secret_key = secrets.token_urlsafe(50)
        self.api_key: str | None = None

    def _admin(self, sql: str) -> None:
        conn = psycopg2.connect(self.services.admin_dsn())
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()

    def prepare(self) -> float:
        """Create and migrate the template database; returns the seconds it took."""
        started = time.monotonic()
        self._admin(f'CREATE DATABASE "{self.template}"')
        self._databases.append(self.template)
        env = self._env(self.template, f"{BENCH_QUEUE_PREFIX}{self.run_id}-migrate", "everruns-bench-migrate")
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if result.returncode:
            raise RuntimeError(f"migrate failed:\n{result.stdout}\n{result.stderr}")
        made = subprocess.run(
            [sys.executable, "manage.py", "create_api_key", "bench", "--scope", "admin"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if made.returncode:
            raise RuntimeError(f"create_api_key failed:\n{made.stdout}\n{made.stderr}")
        self.api_key = made.stdout.strip()
        return time.monotonic() - started

    def _env(self, database: str, queue: str, app_name: str, **extra) -> dict:
        env = dict(os.environ)
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EVERRUNS_DEFAULT_MODEL"):
            env.pop(name, None)
        env.update(
            {
                "DATABASE_URL": self.services.database_url(database),
                "REDIS_URL": self.services.redis_url(),
                "CELERY_QUEUE": queue,
                "EVERRUNS_EMBEDDED_WORKER": "false",
                "EVERRUNS_BENCH_ROUTES": "1",
                "AUTH_MODE": "api_key",
                "SECRET_KEY": self.secret_key,
                # The per-key limits still count (a Redis INCR per write, the turn count per message) but never
                # refuse the bench's one key.
                "WRITE_RATE_LIMIT": "1000000000",
                "MAX_TURNS_PER_KEY": "1000000",
                "MAX_STREAMS_PER_KEY": "100000",
                # libpq reads PGAPPNAME: pg_stat_activity then tells the web's connections from the worker's.
                "PGAPPNAME": app_name,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def deploy(
        self, name: str, *, workers: int = 1, worker_env: dict | None = None, env: dict | None = None
    ) -> Deployment:
        """A fresh database and Redis, then web and worker(s) from the Procfile, started at once; waits for both.
        `env` goes to every process, `worker_env` to the workers only."""
        self._counter += 1
        database = f"everruns_bench_{self.run_id}_{self._counter}_{name}"
        self._admin(f'CREATE DATABASE "{database}" TEMPLATE "{self.template}"')
        self._databases.append(database)
        # A queue of its own too: a worker of another deployment can never take this one's turns.
        queue = f"{BENCH_QUEUE_PREFIX}{self.run_id}-{self._counter}"
        commands = procfile()
        port = free_port()
        log_dir = self.workdir / f"{self._counter}-{name}"
        log_dir.mkdir()
        spawned = time.monotonic()
        web = Proc("web", commands["web"], self._env(database, queue, WEB_APP_NAME, PORT=port, **(env or {})), log_dir)
        deployment = Deployment(
            base_url=f"http://127.0.0.1:{port}",
            web=web,
            database=database,
            queue=queue,
            services=self.services,
            web_pid=web.pid,
            log_dir=log_dir,
            worker_env={**(env or {}), **(worker_env or {})},
        )
        worker_procs = [self.start_worker(deployment, f"worker{i}") for i in range(workers)]
        try:
            deployment.started["web"] = wait_web_ready(web, port, spawned)
            for proc in worker_procs:
                deployment.started[proc.name] = wait_worker_ready(proc, spawned)
        except Exception:
            self.undeploy(deployment)
            raise
        return deployment

    def start_worker(self, deployment: Deployment, name: str) -> Proc:
        """One more Procfile worker on the deployment's database and queue (not waited for)."""
        env = self._env(deployment.database, deployment.queue, WORKER_APP_NAME, **deployment.worker_env)
        proc = Proc(name, procfile()["worker"], env, deployment.log_dir)
        deployment.workers.append(proc)
        deployment.worker_pids.append(proc.pid)
        return proc

    def undeploy(self, deployment: Deployment) -> None:
        for proc in [*deployment.workers, deployment.web]:
            if proc is not None:
                proc.stop()
        if deployment.database:
            self._drop(deployment.database)
        if deployment.queue:
            self.services.drop_queue(deployment.queue)

    def _drop(self, database: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if database in self._databases:
            self._databases.remove(database)

    def close(self) -> None:
        for database in list(self._databases):
            self._drop(database)


def wait_web_ready(web: Proc, port: int, spawned: float, timeout: float = 60.0) -> dict:
    """Ready = the port accepts a connection (uvicorn binds after the app is loaded). RSS is read then,
    before any request has been made."""
    deadline = spawned + timeout
    while time.monotonic() < deadline:
        if not web.alive():
            raise RuntimeError(f"web exited:\n{web.output()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                ready = time.monotonic() - spawned
            return {"ready_s": ready, **procs.status(web.pid)}
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"web did not listen within {timeout} s:\n{web.output()[-3000:]}")


def wait_worker_ready(worker: Proc, spawned: float, timeout: float = 90.0) -> dict:
    deadline = spawned + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.output()[-3000:]}")
        if " ready." in worker.output():
            return {"ready_s": time.monotonic() - spawned, **procs.status(worker.pid)}
        time.sleep(0.02)
    raise RuntimeError(f"worker not ready within {timeout} s:\n{worker.output()[-3000:]}")


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="everruns-bench-"))
