"""The bench's command line.

    python bench/run.py --scenario all --out bench/results/2026-11-29.json   # or `make bench`
    python bench/run.py --quick                                               # smoke run, about a minute
    python bench/run.py --target http://127.0.0.1:9000 --scenario api         # processes already running
    python bench/run.py --scenario api,waiting --profile /tmp/profiles        # py-spy of each measured phase

Without --target the bench starts the Procfile shape itself, for each scenario afresh: a new database
(a copy of one migrated template), the web process and a worker process from the Procfile's command
lines, on private PostgreSQL and Redis servers (see bench/stack.py), and tears everything down at the
end. It loads 127.0.0.1 only, every load bounded in size and time. It prints a table with each target
of issue 8 beside its figure, and writes the JSON and a PNG chart next to each other.
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from bench import report
from bench.scenarios import SCENARIOS, Context
from bench.stack import (
    ROOT,
    Deployment,
    PrivateServices,
    SharedServices,
    Stack,
    make_workdir,
    private_services_available,
    procfile,
)

ORDER = ["start", "api", "instant", "streams", "waiting"]  # cheapest first: a broken stack shows early
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="all", help=f"all, or a comma-separated list of {', '.join(ORDER)}")
    parser.add_argument("--quick", action="store_true", help="small loads: a smoke run of about a minute")
    parser.add_argument("--out", help="the JSON to write (the PNG goes next to it); default bench/results/<date>.json")
    parser.add_argument("--target", help="measure processes already running at this loopback URL instead")
    parser.add_argument("--api-key", default=os.environ.get("EVERRUNS_API_KEY"), help="Bearer key for /v1, if any")
    parser.add_argument("--web-pid", type=int, help="with --target: the web process, for RSS, threads and CPU")
    parser.add_argument("--worker-pid", type=int, action="append", default=[], help="with --target: a worker process")
    parser.add_argument("--database-url", help="with --target: its database, for pg_stat_activity")
    parser.add_argument(
        "--services",
        choices=["auto", "private", "shared"],
        default="auto",
        help="PostgreSQL and Redis of the bench's own (private; auto when installed) or the running ones (shared)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="py-spy (--gil) of the web and worker during each measured phase: collapsed stacks and summaries in DIR",
    )
    parser.add_argument("--pg-admin-url", default="postgres://postgres@127.0.0.1:5432/postgres", help="shared only")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="shared only")
    args = parser.parse_args(argv)
    names = ORDER if args.scenario == "all" else [n.strip() for n in args.scenario.split(",")]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown}; choose from {ORDER} or all")
    args.names = [n for n in ORDER if n in names]
    if args.target and urlsplit(args.target).hostname not in LOOPBACK:
        parser.error("--target must be a loopback address (127.0.0.1, localhost, ::1): the bench loads nothing else")
    if not args.out:
        suffix = "-quick" if args.quick else ""
        args.out = str(ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}{suffix}.json")
    return args


def raise_open_files(wanted: int = 65536) -> int:
    """1,000 SSE clients need more descriptors than many shells allow; the children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def commit() -> str:
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine() -> dict:
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_at_start": os.getloadavg(),
    }


def write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str) + "\n")
    tmp.replace(out)


async def run(args, ctx: Context, results: dict, out: Path) -> None:
    for name in args.names:
        print(f"--- {name}", flush=True)
        started = time.monotonic()
        try:
            outcome = (await SCENARIOS[name](ctx)).to_dict()
        except Exception as exc:
            traceback.print_exc()
            outcome = {"status": f"error: {type(exc).__name__}: {exc}"[:500], "targets": []}
        outcome["seconds"] = round(time.monotonic() - started, 1)
        outcome["deployments"], ctx.started = ctx.started, []
        results["scenarios"][name] = outcome
        print(f"    {outcome['status']} ({outcome['seconds']} s)", flush=True)
        write(results, out)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    # SIGTERM ends the run the way Ctrl-C does: through the `finally` that stops processes and drops databases.
    signal.signal(signal.SIGTERM, _interrupt)
    open_files = raise_open_files()
    workdir = make_workdir()
    services = stack = ctx = None
    failed = False
    results = {
        "meta": {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit(),
            "command": " ".join(["python bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
            "quick": args.quick,
            "machine": machine(),
            "open_files_limit": open_files,
        },
        "scenarios": {},
    }
    try:
        if args.target:
            target = Deployment(base_url=args.target, web_pid=args.web_pid, worker_pids=args.worker_pid)
            ctx = Context(quick=args.quick, target=target, api_key=args.api_key, pg_dsn=args.database_url)
            if args.database_url:
                target.database = urlsplit(args.database_url).path.lstrip("/")
            results["meta"]["mode"] = f"target {args.target}"
        else:
            private = args.services == "private" or (args.services == "auto" and private_services_available())
            services = PrivateServices(workdir) if private else SharedServices(args.pg_admin_url, args.redis_url)
            stack = Stack(services, workdir, run_id=f"{os.getpid()}")
            print(f"services: {services.kind}; migrating the template database ...", flush=True)
            migrate_s = stack.prepare()
            ctx = Context(
                quick=args.quick,
                stack=stack,
                api_key=args.api_key or stack.api_key,
                pg_dsn=services.admin_dsn(),
                reuse=args.quick,
            )
        ctx.profile_dir = Path(args.profile).resolve() if args.profile else None
        if ctx.profile_dir:
            results["meta"]["profile_dir"] = str(ctx.profile_dir)
        if not args.target:
            results["meta"].update(
                {
                    "mode": f"managed, {services.kind} PostgreSQL and Redis",
                    "procfile": procfile(),
                    "postgres_cpu": services.pg_cpu_method,
                    "redis_cpu": services.redis_cpu_method,
                    "migrate_s": round(migrate_s, 1),
                }
            )
        asyncio.run(run(args, ctx, results, out))
    except KeyboardInterrupt:
        print("interrupted: tearing down", flush=True)
        failed = True
    finally:
        if ctx is not None:
            ctx.close()
        if stack is not None:
            stack.close()
        if services is not None:
            services.close()
        results["meta"]["load_average_at_end"] = os.getloadavg()
        write(results, out)
    failed = failed or any(s["status"].startswith("error") for s in results["scenarios"].values())
    if failed:
        print(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(report.table(results))
    print()
    print(f"JSON: {out}")
    try:
        chart = out.with_suffix(".png")
        report.chart(results, str(chart))
        print(f"chart: {chart}")
    except ImportError:
        print("chart: matplotlib is not installed (pip install -r bench/requirements.txt)")
    return 1 if failed else 0
