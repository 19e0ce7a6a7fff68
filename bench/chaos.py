"""The chaos run (issue 10): tool turns through crashes and restarts, judged from the API alone.

    python bench/chaos.py          # or `make chaos`; --help for the knobs

It starts what the bench starts (bench/stack.py): a PostgreSQL cluster and a Redis server of its own on
free loopback ports in a temporary directory, and the Procfile's `web` and two `worker` processes
(AUTH_MODE=api_key, with a key of its own). Short lease and sweep settings make a crashed worker's turns
resume within seconds. Then, at once:

- 20 sessions each post 5 arithmetic questions ("What is 7 + 8?" with varying numbers, on an agent with
  `test_math` and llmsim providers that wait 300-800 ms per call), one after the other: a session's next
  message goes once its turn has ended (seen in its events). POSTs that fail during an outage are retried
  with the same Idempotency-Key.
- every 3-5 s a random worker gets SIGKILL and a fresh one starts; Redis is restarted once when 30 % of
  the turns have ended, PostgreSQL once at 60 % (stop, a pause, start on the same port and data).

When every turn has ended (or 40 s before the cap, so that a turn that does not end in calm counts as
lost rather than merely slowed down) the crashes stop and the processes get a few seconds to settle.
Then every session's messages and events are read through the API, every page, and judged by
bench/chaos_check.py. It prints the figures and writes them as JSON (bench/results/chaos-<date>.json),
with the events and log lines of every turn that went wrong. Exit status: 0 when every turn completed
exactly once, 1 when a check failed, 2 when the harness itself could not run. Everything it started is
stopped and its databases and data directories removed, on Ctrl-C too; the process logs are kept (their
directory is printed) unless the run passed and --keep-logs was not given.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/chaos.py` from any directory

import httpx  # noqa: E402 - after the sys.path line, as the bench modules below

from bench.chaos_check import PostedTurn, check_session, summarize, turn_end, turn_of_message  # noqa: E402
from bench.cli import commit, machine  # noqa: E402
from bench.client import Api  # noqa: E402
from bench.stack import ROOT, PrivateServices, Proc, Stack, make_workdir, private_services_available  # noqa: E402

# Turns of a dead worker resume after about lease + sweep; a queued turn whose broker message was lost (a
# Redis restart) is sent again after the grace. The web needs the grace too: it sets a new turn's deadline.
TURN_SETTINGS = {"TURN_LEASE_SECONDS": "3", "TURN_SWEEP_SECONDS": "1", "TURN_QUEUED_GRACE_SECONDS": "5"}
OPERATIONS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
POLL_SECONDS = 0.4
CALM_SECONDS = 40  # the end of the cap without crashes (see drive())
PAGE = 50  # small pages on purpose: the check reads every session's lists over several pages
LOG_MARKERS = (
    "resumed by",
    "re-queuing stuck turn",
    "crashed",
    "lease lost",
    "Traceback",
    "Unrecoverable",
    "ERROR",
    "heartbeat of turns",
    "sweep failed",
    "could not queue",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/chaos.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=5, help="turns per session, posted one after the other")
    parser.add_argument("--workers", type=int, default=2, help="workers alive at any time")
    parser.add_argument("--latency-ms", default="300,550,800", help="llmsim latencies per call, one provider each")
    parser.add_argument("--kill-every", default="3,5", help="seconds between kills: min,max (0 turns kills off)")
    parser.add_argument("--pause", type=float, default=1.5, help="seconds Redis and PostgreSQL stay down")
    parser.add_argument("--no-restarts", action="store_true", help="kill workers but restart no service")
    parser.add_argument("--cap", type=float, default=180, help="seconds the turns may take before they count lost")
    parser.add_argument("--seed", type=int, help="random seed (numbers, kills); printed, so a run can be repeated")
    parser.add_argument("--keep-logs", action="store_true", help="keep the process logs even when the run passes")
    parser.add_argument("--out", help="the JSON to write; default bench/results/chaos-<date>.json")
    args = parser.parse_args(argv)
    args.latencies = [int(v) for v in args.latency_ms.split(",")]
    low, _, high = args.kill_every.partition(",")
    args.kill_range = (float(low), float(high or low))
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(10**6)
    if not args.out:
        args.out = str(ROOT / "bench" / "results" / f"chaos-{datetime.now(UTC):%Y-%m-%d}.json")
    return args


class Timeline:
    """What the chaos did and saw, with seconds since the drive started; printed as it happens."""

    def __init__(self):
        self.start = time.monotonic()
        self.entries: list[dict] = []

    def add(self, kind: str, **data) -> None:
        utc = datetime.now(UTC).strftime("%H:%M:%S.%f")[:12]  # as the logs and the events' created_at
        entry = {"t": round(time.monotonic() - self.start, 2), "utc": utc, "kind": kind, **data}
        self.entries.append(entry)
        shown = " ".join(f"{k}={v}" for k, v in data.items() if k != "log_tail")
        print(f"  [{entry['t']:6.1f} s {utc}] {kind} {shown}", flush=True)

    def count(self, kind: str) -> int:
        return sum(1 for e in self.entries if e["kind"] == kind)


@dataclass
class Progress:
    planned: int
    ended: int = 0  # turns that ended (any way) or were given up on


class SessionDriver:
    """One session's client: posts its turns one after the other, each once the previous one ended."""

    def __init__(self, api: Api, agent_id: str, session_id: str, turns: int, rng: random.Random, deadline: float):
        self.api, self.agent_id, self.session_id = api, agent_id, session_id
        self.clock = time.monotonic()  # reset to the drive's start: error times match the timeline's
        self.path = api.session_path(agent_id, session_id)
        self.turns, self.rng, self.deadline = turns, rng, deadline
        self.posted: list[PostedTurn] = []
        self.observed: list[dict] = []  # per turn: what the driver saw (for the JSON)
        self.events: list[dict] = []
        self.http_errors: list[tuple] = []  # (seconds, kind, detail): answers a retry got past (5xx, drops)
        self.refused: str | None = None  # a 4xx to a POST: the session stops

    def question(self) -> tuple[str, str]:
        a, b = self.rng.randint(2, 99), self.rng.randint(2, 99)
        symbol = self.rng.choice(list(OPERATIONS))
        return f"What is {a} {symbol} {b}?", str(OPERATIONS[symbol](a, b))

    async def run(self, progress: Progress) -> None:
        for _ in range(self.turns):
            if time.monotonic() > self.deadline or self.refused:
                break
            text, expected = self.question()
            started = time.monotonic()
            message, attempts, status = await self.post(text)
            if message is None:
                break
            self.posted.append(PostedTurn(message["id"], expected))
            turn_id, end = await self.wait_end(message["id"])
            self.observed.append(
                {
                    "message_id": message["id"],
                    "question": text,
                    "turn_id": turn_id,
                    "end": end["type"] if end else None,
                    "seconds": round(time.monotonic() - started, 2),
                    "post_attempts": attempts,
                    "post_status": status,  # 200: a retry found the message an earlier attempt had stored
                }
            )
            progress.ended += 1
            if end is None:
                break  # still running: a next message would join that turn, so the session stops here
        progress.ended += self.turns - len(self.observed)  # given up on: the run need not wait for them

    def http_error(self, kind: str, detail: str) -> None:
        self.http_errors.append((round(time.monotonic() - self.clock, 2), kind, detail))

    async def post(self, text: str) -> tuple[dict | None, int, int | None]:
        """POST the message until it is stored; one Idempotency-Key for every attempt, so an attempt whose
        answer was lost cannot store it twice."""
        body = {"message": {"content": [{"type": "text", "text": text}]}}
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        attempts = 0
        while time.monotonic() < self.deadline:
            attempts += 1
            try:
                response = await self.api.http.post(f"{self.path}/messages", json=body, headers=headers)
                if response.status_code in (200, 201):
                    return response.json(), attempts, response.status_code
                kind, detail = f"POST {response.status_code}", response.text[:200]
                if response.status_code < 500:
                    self.refused = f"{kind}: {detail}"
                    return None, attempts, response.status_code
            except httpx.HTTPError as exc:
                kind, detail = f"POST {type(exc).__name__}", str(exc)[:200]
            self.http_error(kind, detail)
            await asyncio.sleep(0.5)
        return None, attempts, None

    async def wait_end(self, message_id: str) -> tuple[str | None, dict | None]:
        """Read the session's new events until the message's turn has ended (or the deadline)."""
        turn_id = None
        while time.monotonic() < self.deadline:
            after = self.events[-1]["sequence"] if self.events else 0
            try:
                response = await self.api.http.get(f"{self.path}/events", params={"after": after, "limit": 500})
                if response.status_code == 200:
                    self.events += response.json()["items"]
                else:
                    self.http_error(f"GET events {response.status_code}", response.text[:200])
            except httpx.HTTPError as exc:
                self.http_error(f"GET events {type(exc).__name__}", str(exc)[:200])
            turn_id = turn_of_message(self.events, message_id)
            end = turn_end(self.events, turn_id) if turn_id else None
            if end:
                return turn_id, end
            await asyncio.sleep(POLL_SECONDS)
        return turn_id, None


class Chaos:
    """Kills workers, starts fresh ones, restarts the services; replaces workers that die by themselves."""

    def __init__(self, stack: Stack, deployment, services: PrivateServices, args, timeline: Timeline):
        self.stack, self.deployment, self.services = stack, deployment, services
        self.args, self.timeline = args, timeline
        self.rng = random.Random(args.seed + 1)
        self.killed: set[int] = set()
        self.counter = len(deployment.workers)
        self.restarts: list[dict] = []

    def alive(self) -> list[Proc]:
        return [w for w in self.deployment.workers if w.pid not in self.killed and w.alive()]

    def start_worker(self) -> Proc:
        worker = self.stack.start_worker(self.deployment, f"worker{self.counter}")
        self.counter += 1
        return worker

    def kill_one(self) -> None:
        alive = self.alive()
        if not alive:
            return
        # A worker that has not finished starting holds no turn yet: kill one that is ready when there is one.
        ready = [w for w in alive if " ready." in w.output()]
        victim = self.rng.choice(ready or alive)
        self.killed.add(victim.pid)
        victim.kill()
        fresh = self.start_worker()
        self.timeline.add("kill", worker=victim.name, pid=victim.pid, started=fresh.name)

    def watch(self) -> None:
        """A worker that exited without being killed is a finding: note it with its last lines, replace it."""
        for w in list(self.deployment.workers):
            if w.pid not in self.killed and not w.alive():
                self.killed.add(w.pid)
                tail = w.output().splitlines()[-15:]
                fresh = self.start_worker()
                self.timeline.add(
                    "worker_exited", worker=w.name, code=w.popen.returncode, log_tail=tail, started=fresh.name
                )
        web = self.deployment.web
        if not web.alive() and not self.timeline.count("web_exited"):
            self.timeline.add("web_exited", code=web.popen.returncode, log_tail=web.output().splitlines()[-15:])

    async def kills(self, calm: asyncio.Event, done: asyncio.Event) -> None:
        """Kill every few seconds until `calm`; replace workers that died by themselves until `done`."""
        low, high = self.args.kill_range
        next_kill = time.monotonic() + self.rng.uniform(low, high)
        while not done.is_set():
            self.watch()
            if high > 0 and not calm.is_set() and time.monotonic() >= next_kill:
                self.kill_one()  # on the loop, as watch(): one writer of the worker list
                next_kill = time.monotonic() + self.rng.uniform(low, high)
            await asyncio.sleep(0.1)

    async def restarts_at(self, progress: Progress, stop: asyncio.Event) -> None:
        """Redis once at 30 % of the turns ended, PostgreSQL once at 60 % (or at 30 % / 60 % of the cap if the
        turns stall), at least 5 s apart."""
        if self.args.no_restarts:
            return
        began = time.monotonic()
        last = 0.0
        for name, fraction in (("redis", 0.3), ("postgres", 0.6)):
            while not stop.is_set():
                elapsed = time.monotonic() - began
                due = progress.ended >= fraction * progress.planned or elapsed >= fraction * self.args.cap
                if due and time.monotonic() - last >= 5:
                    break
                await asyncio.sleep(0.1)
            if stop.is_set():
                return
            self.timeline.add("restart_begin", service=name, turns_ended=progress.ended)
            restart = self.services.restart_redis if name == "redis" else self.services.restart_postgres
            figures = await asyncio.to_thread(restart, self.args.pause)
            last = time.monotonic()
            self.restarts.append({"service": name, **{k: round(v, 2) for k, v in figures.items()}})
            self.timeline.add("restart_end", service=name, down_s=round(figures["down_s"], 2))


async def list_all(api: Api, path: str) -> list[dict]:
    """Every item of a list, page after page (`offset + len(items)` until `total`)."""
    items: list[dict] = []
    while True:
        page = await api.read(f"{path}?limit={PAGE}&offset={len(items)}", within=60)
        items += page["items"]
        if not page["items"] or len(items) >= page["total"]:
            return items


def http_error_spans(drivers: list[SessionDriver]) -> dict:
    """The errors the clients retried past, by kind: how many, first and last second (drive clock)."""
    spans: dict[str, dict] = {}
    for d in drivers:
        for t, kind, detail in d.http_errors:
            span = spans.setdefault(kind, {"count": 0, "first_s": t, "last_s": t, "sample": detail})
            span["count"] += 1
            span["first_s"], span["last_s"] = min(span["first_s"], t), max(span["last_s"], t)
    return spans


def log_lines(log_dir: Path, needles: list[str], limit: int = 40) -> list[str]:
    """Lines of the run's process logs that mention any of `needles` (a turn id, say), with the file name."""
    out = []
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if any(n in line for n in needles):
                out.append(f"{path.name}: {line[:400]}")
                if len(out) >= limit:
                    return out
    return out


def marker_counts(log_dir: Path) -> dict:
    counts = {}
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            for marker in LOG_MARKERS:
                if marker in line:
                    counts[marker] = counts.get(marker, 0) + 1
    return counts


def compact(event: dict) -> str:
    data = event.get("data") or {}
    if event["type"].startswith("message."):
        m = data.get("message") or {}
        parts = [
            p.get("text")
            or (f"call {p.get('id')} {p.get('name')}{p.get('arguments')}" if p["type"] == "tool_call" else "")
            or f"result {p.get('tool_call_id')}={p.get('result')} error={p.get('error')}"
            for p in m.get("content") or []
        ]
        detail = f"message {m.get('sequence')} {'; '.join(parts)}"[:160]
    else:
        detail = json.dumps(data, default=str)[:160]
    at = (event.get("created_at") or "")[11:23]  # HH:MM:SS.mmm, UTC as the logs: events and log lines line up
    return f"{event['sequence']} {at} {event['type']} {detail}"


async def drive(args, stack: Stack, deployment, services: PrivateServices, api_key: str, log_dir: Path) -> dict:
    api = Api(deployment.base_url, api_key, max_connections=64)
    rng = random.Random(args.seed)
    try:
        models = [await api.slow_model(ms) for ms in args.latencies]
        agent_id = await api.agent("chaos", ["test_math"])
        session_ids = [
            (await api.sessions(agent_id, 1, model_id=models[i % len(models)]))[0] for i in range(args.sessions)
        ]
        timeline = Timeline()
        deadline = time.monotonic() + args.cap
        drivers = [
            SessionDriver(api, agent_id, s, args.turns, random.Random(rng.random()), deadline) for s in session_ids
        ]
        for d in drivers:
            d.clock = timeline.start
        progress = Progress(planned=args.sessions * args.turns)
        chaos = Chaos(stack, deployment, services, args, timeline)
        calm, done = asyncio.Event(), asyncio.Event()
        print(f"driving {progress.planned} turns over {args.sessions} sessions ...", flush=True)
        chaos_tasks = [
            asyncio.create_task(chaos.kills(calm, done)),
            asyncio.create_task(chaos.restarts_at(progress, calm)),
        ]
        # The last CALM_SECONDS of the cap have no crashes: a turn that still does not end then is lost indeed,
        # not merely behind a worker that was killed once more.
        calm_after = asyncio.get_running_loop().call_later(max(0.0, args.cap - CALM_SECONDS), calm.set)
        await asyncio.gather(*(d.run(progress) for d in drivers))
        drive_s = time.monotonic() - timeline.start
        calm_after.cancel()
        if calm.is_set():
            timeline.add("calm_was_reached", at_s=round(args.cap - CALM_SECONDS, 1))
        calm.set()
        timeline.add("chaos_stopped", turns_ended=progress.ended)
        # Late writes (a turn resumed after it ended, say) would come within a lease and a sweep or two.
        settle = float(TURN_SETTINGS["TURN_LEASE_SECONDS"]) + 2 * float(TURN_SETTINGS["TURN_SWEEP_SECONDS"]) + 2
        await asyncio.sleep(settle)
        done.set()
        await asyncio.gather(*chaos_tasks)

        verdicts, sessions_out = [], []
        for d in drivers:
            session = await api.read(d.path, within=60)
            messages = await list_all(api, f"{d.path}/messages")
            events = await list_all(api, f"{d.path}/events")
            verdict = check_session(messages=messages, events=events, posted=d.posted, final_status=session["status"])
            verdicts.append(verdict)
            entry = {
                "session_id": d.session_id,
                "status": session["status"],
                "posted": len(d.posted),
                "messages": len(messages),
                "events": len(events),
                "http_errors_retried": len(d.http_errors),
                "problems": verdict.problems,
            }
            if d.refused:
                entry["refused"] = d.refused
                verdict.problems.append(f"a POST was refused: {d.refused}")
            if verdict.problems:
                entry["observed"] = d.observed
                entry["turns"] = []
                for t in verdict.turns:
                    if not t.problems:
                        continue
                    own = [e for e in events if e.get("turn_id") == t.turn_id] if t.turn_id else []
                    entry["turns"].append(
                        {
                            "turn_id": t.turn_id,
                            "message_id": t.message_id,
                            "problems": t.problems,
                            "events": [compact(e) for e in own],
                            "log_lines": log_lines(log_dir, [t.turn_id]) if t.turn_id else [],
                        }
                    )
            sessions_out.append(entry)
        summary = summarize(verdicts, progress.planned)
        summary.update(
            {
                "kills": timeline.count("kill"),
                "workers_exited_by_themselves": timeline.count("worker_exited"),
                "restarts": chaos.restarts,
                "drive_s": round(drive_s, 1),
                "http_errors_retried": sum(len(d.http_errors) for d in drivers),
                "posts_retried": sum(1 for d in drivers for o in d.observed if o["post_attempts"] > 1),
                "posts_replayed": sum(1 for d in drivers for o in d.observed if o["post_status"] == 200),
                # A replay after an error answer: the server had stored the message yet answered with an error.
                "replays": [
                    {"session_id": d.session_id, **o} for d in drivers for o in d.observed if o["post_status"] == 200
                ],
                "http_errors": http_error_spans(drivers),
            }
        )
        if timeline.count("web_exited"):
            summary["ok"] = False
        if not args.no_restarts and len(chaos.restarts) < 2:
            summary["ok"] = False
            summary["harness_note"] = "the turns ended before both restarts happened"
        return {
            "summary": summary,
            "timeline": timeline.entries,
            "sessions": sessions_out,
            "log_markers": marker_counts(log_dir),
        }
    finally:
        await api.close()


def print_report(result: dict, args) -> None:
    s = result["summary"]
    restarts = ", ".join(f"{r['service']} (down {r['down_s']} s)" for r in s["restarts"]) or "none"
    lines = [
        "",
        f"chaos: {s['planned']} turns over {args.sessions} sessions, {args.workers} workers, "
        f"llmsim {args.latency_ms} ms per call, seed {args.seed}",
        "settings: " + " ".join(f"{k}={v}" for k, v in TURN_SETTINGS.items()),
        f"  posted     {s['posted']}",
        f"  completed  {s['completed']}",
        f"  lost       {s['lost']}" + (f" ({s['not_posted']} never posted)" if s["not_posted"] else ""),
        f"  repeated   {s['repeated']} (LLM responses {s['repeated_llm_responses']}, "
        f"tool results {s['repeated_tool_results']})",
        f"  failed     {s['failed']}" + (f" {s['failed_codes']}" if s["failed_codes"] else ""),
        f"  problems   {s['problems']} in {s['sessions_with_problems']} sessions",
        f"  kills {s['kills']}, workers that exited by themselves {s['workers_exited_by_themselves']}, "
        f"restarts: {restarts}",
        f"  drive {s['drive_s']} s, wall {s.get('wall_s')} s; HTTP errors retried by the clients: "
        f"{s['http_errors_retried']}; POSTs retried {s['posts_retried']}, of which answered by a replay "
        f"(200: an earlier attempt had stored it) {s['posts_replayed']}",
    ]
    markers = result.get("log_markers", {})
    lines.append(
        f"  worker logs: {markers.get('resumed by', 0)} resumes, {markers.get('re-queuing stuck turn', 0)} re-queues, "
        f"{markers.get('crashed', 0)} turn crashes, {markers.get('Unrecoverable', 0)} unrecoverable errors"
    )
    for kind, span in s["http_errors"].items():
        lines.append(f"    {span['count']} x {kind} at {span['first_s']}-{span['last_s']} s")
    problems = [(e["session_id"], p) for e in result["sessions"] for p in e["problems"]]
    for session_id, problem in problems[:25]:
        lines.append(f"  ! {session_id}: {problem}")
    if len(problems) > 25:
        lines.append(f"  ! ... {len(problems) - 25} more in the JSON")
    lines.append(
        f"{s['completed']} completed, {s['lost']} lost, {s['repeated']} repeated: {'OK' if s['ok'] else 'FAIL'}"
    )
    print("\n".join(lines), flush=True)


def keep_service_logs(services: PrivateServices, log_dir: Path) -> None:
    for path in services.log_paths():
        if path.exists():
            shutil.copy(path, log_dir / path.name)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    if not private_services_available():
        print("chaos needs PostgreSQL 15 (initdb) and redis-server: it restarts services of its own only")
        return 2
    # Ctrl-C, SIGTERM and the hard cap end the run the same way: through the `finally` that stops everything.
    # SIGINT explicitly too: a shell starts background jobs with it ignored (`make chaos &`).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
        signal.signal(sig, _interrupt)
    # The hard cap on the whole run: set-up, the drive (--cap), settling, reading and a margin.
    signal.alarm(int(args.cap) + 180)
    started = time.monotonic()
    workdir = make_workdir()
    services = stack = deployment = None
    result: dict = {}
    status = 2
    meta = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "command": " ".join(["python bench/chaos.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "seed": args.seed,
        "settings": {
            "turn": TURN_SETTINGS,
            "sessions": args.sessions,
            "turns_per_session": args.turns,
            "workers": args.workers,
            "llmsim_latency_ms": args.latencies,
            "kill_every_s": args.kill_range,
            "service_pause_s": args.pause,
            "cap_s": args.cap,
        },
    }
    log_dir = workdir
    try:
        services = PrivateServices(workdir)
        stack = Stack(services, workdir, run_id=f"chaos{os.getpid()}")
        print(f"private PostgreSQL :{services.pg_port}, Redis :{services.redis_port}; migrating ...", flush=True)
        stack.prepare()
        deployment = stack.deploy("chaos", workers=args.workers, env=TURN_SETTINGS)
        log_dir = deployment.log_dir
        print(f"web {deployment.base_url}, {args.workers} workers; logs in {log_dir}", flush=True)
        result = asyncio.run(drive(args, stack, deployment, services, stack.api_key, log_dir))
        status = 0 if result["summary"]["ok"] else 1
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C, SIGTERM or the hard cap): tearing down", flush=True)
        result["error"] = "interrupted"
    except Exception as exc:
        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}"[:1000]
    finally:
        signal.alarm(0)
        steps = []
        if deployment is not None:
            steps.append(lambda: stack.undeploy(deployment))
        if stack is not None:
            steps.append(stack.close)
        if services is not None:
            steps += [lambda: keep_service_logs(services, log_dir), services.close]  # its data directory goes too
        for step in steps:  # each one even if one before failed (a database drop with PostgreSQL down, say)
            try:
                step()
            except Exception as exc:
                print(f"teardown: {type(exc).__name__}: {exc}", flush=True)
                status = status or 2
    result["meta"] = meta
    result.setdefault("summary", {})["wall_s"] = round(time.monotonic() - started, 1)
    keep = status != 0 or args.keep_logs
    result["logs"] = str(log_dir) if keep else None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    if "restarts" in result["summary"]:
        print_report(result, args)
    if keep:
        print(f"logs kept in {log_dir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"JSON: {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
