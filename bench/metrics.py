"""Resource figures while a load runs: RSS, threads, PostgreSQL connections (maxima) and CPU per component.

The sampler is a thread, not a task on the load's event loop, so a slow PostgreSQL query of its own
never delays the clients whose timings are being taken.
"""

import resource
import threading
import time

import psycopg2

from bench import procs
from bench.stack import WEB_APP_NAME, WORKER_APP_NAME, Deployment

SAMPLE_SECONDS = 0.25


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Sampler:
    def __init__(self, deployment: Deployment, pg_dsn: str | None = None, interval: float = SAMPLE_SECONDS):
        self.deployment = deployment
        self.pg_dsn = pg_dsn
        self.interval = interval
        self.maxima: dict[str, float] = {}
        self._backend_cpu: dict[int, float] = {}  # shared services: CPU last seen per backend of the bench db
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._conn = None
        self.errors: list[str] = []

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        if self._conn is not None:
            self._conn.close()

    def reset(self) -> None:
        """Start the maxima afresh (a scenario's setup should not count)."""
        self.maxima = {}

    def _max(self, key: str, value: float | None) -> None:
        if value is not None:
            self.maxima[key] = max(self.maxima.get(key, value), value)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        d = self.deployment
        if d.web_pid:
            status = procs.status(d.web_pid)
            self._max("web_rss_mb", status.get("rss_mb"))
            self._max("web_threads", status.get("threads"))
        for pid in d.worker_pids:
            status = procs.status(pid)
            self._max("worker_rss_mb", status.get("rss_mb"))
            self._max("worker_threads", status.get("threads"))
        if self.pg_dsn and d.database:
            self._sample_pg(d.database)

    def _sample_pg(self, database: str) -> None:
        try:
            if self._conn is None:
                self._conn = psycopg2.connect(self.pg_dsn, application_name="everruns-bench-sampler")
                self._conn.autocommit = True
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT pid, application_name FROM pg_stat_activity WHERE datname = %s", [database])
                rows = cursor.fetchall()
        except psycopg2.Error as exc:
            self.errors.append(f"{time.strftime('%X')} {type(exc).__name__}: {str(exc).strip()[:200]}")
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            return
        self._max("pg_connections", len(rows))
        self._max("pg_connections_web", sum(1 for _, app in rows if app == WEB_APP_NAME))
        self._max("pg_connections_worker", sum(1 for _, app in rows if app == WORKER_APP_NAME))
        for pid, _ in rows:
            cpu = procs.cpu(pid)
            if cpu:
                self._backend_cpu[pid] = max(cpu, self._backend_cpu.get(pid, 0.0))

    def cpu(self) -> dict:
        """CPU seconds so far per component; subtract two of these for a window."""
        d = self.deployment
        out = {
            "web": procs.cpu(d.web_pid) if d.web_pid else None,
            "worker": sum(procs.cpu(pid) for pid in d.worker_pids) if d.worker_pids else None,
            "postgres": None,
            "redis": None,
            "bench_client": own_cpu(),
        }
        services = d.services
        if services is not None:
            pg = services.pg_cpu()
            if pg is None and self.pg_dsn:
                self.sample()
                pg = sum(self._backend_cpu.values())
            out["postgres"] = pg
            redis_pid = services.redis_pid()
            out["redis"] = procs.cpu(redis_pid) if redis_pid else None
        return out


def cpu_delta(before: dict, after: dict) -> dict:
    return {k: None if before.get(k) is None or after[k] is None else after[k] - before[k] for k in after}
