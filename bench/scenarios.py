"""The five scenarios of issue 8. Each returns {status, targets, figures, distributions, notes}.

Every load is bounded: a fixed number of sessions, clients and turns, and a time cap after which the
scenario stops, reports "did not finish in X s" and the figures it has.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.client import (
    Api,
    BenchError,
    PublishProbe,
    RawHttp,
    SseClient,
    bounded,
    parse_time,
    turn_ended,
    turn_of_message,
    turn_started_by,
)
from bench.metrics import Sampler, cpu_delta, own_cpu
from bench.profile import Profiler
from bench.report import Target, distribution, percentile, summary
from bench.stack import Deployment, Stack

POLL_SECONDS = 0.5


@dataclass
class Context:
    quick: bool
    stack: Stack | None = None  # None: measure the processes at --target
    target: Deployment | None = None
    api_key: str | None = None
    pg_dsn: str | None = None  # for pg_stat_activity: the services' admin database, or --database-url
    # --quick: one deployment serves every scenario but `start` (process start-ups would be most of a smoke run).
    reuse: bool = False
    _kept: Deployment | None = None
    started: list = field(default_factory=list)  # start-up figures of the deployments made, for the JSON
    profile_dir: Path | None = None  # --profile: py-spy of the processes during each measured phase

    def profiling(self, phase: str, d: Deployment) -> Profiler:
        pids = {"web": d.web_pid, **{f"worker{i}": pid for i, pid in enumerate(d.worker_pids)}}
        return Profiler(self.profile_dir, phase, pids)

    def deploy(self, name: str, **kwargs) -> Deployment:
        if not self.stack:
            return self.target
        if self.reuse and self._kept:
            return self._kept
        deployment = self.stack.deploy(name, **kwargs)
        self.started.append({"name": name, **deployment.started})
        if self.reuse:
            self._kept = deployment
        return deployment

    def undeploy(self, deployment: Deployment) -> None:
        if self.stack and not self.reuse:
            self.stack.undeploy(deployment)

    def close(self) -> None:
        if self._kept is not None:
            self.stack.undeploy(self._kept)
            self._kept = None


@dataclass
class Result:
    status: str = "ok"
    targets: list[Target] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    distributions: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def target(self, key: str, label: str, op: str, limit: float, unit: str, value, note: str = "", bound: str = ""):
        self.targets.append(Target(key, label, op, limit, unit, value, note, bound))

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "targets": [t.to_dict() for t in self.targets],
            "figures": self.figures,
            "distributions": self.distributions,
            "notes": self.notes,
        }


async def warm_up(api: Api, agent_id: str, turns: int = 1, timeout: float = 90.0) -> None:
    """Instant turns on the default model until the worker has imported litellm and served a turn."""
    (session_id,) = await api.sessions(agent_id, 1)
    path = api.session_path(agent_id, session_id)
    for _ in range(turns):
        posted = await api.post_message(agent_id, session_id, "What is 1 + 1?")
        if posted["status"] != 201:
            raise BenchError(f"warm-up POST failed: {posted}")
        deadline = time.monotonic() + timeout
        while (await api.read(path))["status"] == "running":
            if time.monotonic() > deadline:
                raise BenchError(f"warm-up turn did not end in {timeout} s")
            await asyncio.sleep(0.05)


# --- 1. Waiting turns --------------------------------------------------------------------------------


async def waiting(ctx: Context) -> Result:
    result = Result()
    if ctx.quick:
        runs = [("small", 10, 500, None, 30), ("large", 20, 1000, None, 30)]
    else:
        # (key, sessions, llmsim latency per call, worker settings, cap in seconds)
        runs = [("small", 100, 2000, None, 120), ("large", 1000, 30000, None, 180)]
    statuses = []
    for key, sessions, latency_ms, worker_env, cap in runs:
        statuses.append(await _waiting_run(ctx, result, key, sessions, latency_ms, worker_env, cap))
    result.status = "; ".join(s for s in statuses if s != "ok") or "ok"
    return result


async def _waiting_run(ctx, result: Result, key, sessions: int, latency_ms: int, worker_env, cap: float) -> str:
    ideal = 2 * latency_ms / 1000  # two LLM calls per turn; nothing else should take measurable time
    label = f"{sessions} sessions x 1 turn at {latency_ms / 1000:g} s/call"
    d = ctx.deploy(f"waiting-{key}", worker_env=worker_env)
    api = Api(d.base_url, ctx.api_key, max_connections=120)
    status = "ok"
    try:
        with Sampler(d, ctx.pg_dsn) as sampler:
            model_id = await api.slow_model(latency_ms)
            agent_id = await api.agent(f"bench waiting {key}", ["test_math"])
            await warm_up(api, agent_id)
            ids = await api.sessions(agent_id, sessions, model_id=model_id)
            sampler.reset()
            started = time.time()
            posted: dict[str, dict] = {}

            async def post(session_id):
                posted[session_id] = await api.post_message(agent_id, session_id)

            # Every session's client posts at once (100 in flight at most: a burst, not a stampede).
            with ctx.profiling(f"waiting-{key}", d):
                posting = asyncio.create_task(bounded(100, [lambda s=s: post(s) for s in ids]))
                done: dict[str, dict] = {}
                deadline = started + cap
                # Listing 1,000 sessions costs the server real work: poll a large run less often. The wall time
                # comes from the sessions' updated_at, so the poll interval does not change the figure.
                poll = POLL_SECONDS if sessions <= 100 else 4 * POLL_SECONDS
                while time.time() < deadline:
                    await asyncio.sleep(poll)
                    # Only sessions whose POST had returned before the list was asked for: an older answer
                    # would show a session still `pending` from before its message.
                    accepted = {sid for sid, p in posted.items() if p["status"] == 201}
                    all_posted = posting.done()
                    for s in await api.all_sessions(agent_id):
                        if s["id"] in accepted and s["status"] in ("pending", "failed") and s["id"] not in done:
                            done[s["id"]] = s
                    if all_posted and len(done) == len(accepted):
                        break
            finished = time.time()
            errors = [p for p in posted.values() if p["status"] != 201]
            complete = posting.done() and len(done) == len(posted) - len(errors)  # every accepted turn ended
            if not posting.done():
                posting.cancel()
            ends = {sid: parse_time(s["updated_at"]) for sid, s in done.items()}
            latencies = [(ends[sid] - posted[sid]["started"]) * 1000 for sid in ends]
            wall = (max(ends.values()) - started) if complete and ends else None
            failed = sum(1 for s in done.values() if s["status"] == "failed")
            result.distributions[f"waiting {key}: {label}"] = distribution(latencies, "turn")
            figures = {
                "sessions": sessions,
                "llmsim_latency_ms": latency_ms,
                "ideal_s": ideal,
                "cap_s": cap,
                "wall_s": wall,
                "turns_ended": len(done),
                "turns_failed": failed,
                "post_errors": len(errors),
                "post_error_samples": [p.get("error") for p in errors[:3]],
                # How the wall time splits: the burst of POSTs (the last answered this long after the first was
                # sent), and each turn from its POST's answer to its end (ideal: the two calls, 2 x latency).
                "posts_answered_s": max((p["finished"] for p in posted.values()), default=started) - started,
                "post_latency_ms": summary([(p["finished"] - p["started"]) * 1000 for p in posted.values()]),
                "after_post_ms": summary([(ends[sid] - posted[sid]["finished"]) * 1000 for sid in ends]),
                "observed_s": finished - started,
                "turn_latency_ms": summary(latencies),
                "resources": dict(sampler.maxima),
                "sampler_errors": sampler.errors[:5],
                "worker_settings": worker_env or "Procfile defaults",
            }
            result.figures[key] = figures
            if wall:
                pct, bound, note = ideal / wall * 100, "", f"wall {wall:.1f} s, ideal {ideal:g} s"
            else:
                status = f"{key}: did not finish in {cap:g} s ({len(done)}/{sessions} turns ended)"
                pct, bound = ideal / cap * 100, "<"
                note = f"did not finish in {cap:g} s: {len(done)}/{sessions} turns ended"
            if failed or errors:
                note += f"; {failed} turns failed, {len(errors)} POSTs refused or reset"
            result.target(f"waiting.{key}.ideal_pct", f"{label}: % of ideal", ">=", 90, "%", pct, note, bound)
            # A refused message or a failed turn misses the target whatever the wall time of the others.
            result.targets[-1].broken = bool(failed or errors)
            if key == "large":
                m = sampler.maxima
                result.target("waiting.large.worker_rss", "worker RSS (max)", "<=", 1024, "MB", m.get("worker_rss_mb"))
                result.target(
                    "waiting.large.pg_connections",
                    "PostgreSQL connections, all processes (max)",
                    "<=",
                    20,
                    "",
                    m.get("pg_connections"),
                    "sampled every 0.25 s",
                )
            if not ctx.stack:
                await _cancel_running(api, agent_id)
    finally:
        await api.close()
        ctx.undeploy(d)
    return status


async def _cancel_running(api: Api, agent_id: str) -> None:
    """Against --target, leave nothing running behind (the bench owns no processes to stop there)."""
    running = [s["id"] for s in await api.all_sessions(agent_id) if s["status"] == "running"]

    async def cancel(session_id):
        try:
            await api.call("POST", f"{api.session_path(agent_id, session_id)}/cancel", {}, expect=(202, 409))
        except (BenchError, httpx.HTTPError) as exc:
            print(f"    could not cancel {session_id}: {exc}", flush=True)

    await bounded(16, [lambda s=s: cancel(s) for s in running])


# --- 2. Streams ----------------------------------------------------------------------------------------


async def streams(ctx: Context) -> Result:
    result = Result()
    sessions, per_session, cap = (10, 5, 40) if ctx.quick else (100, 10, 150)
    clients_total = sessions * per_session
    d = ctx.deploy("streams")
    api = Api(d.base_url, ctx.api_key, max_connections=120)
    clients: list[SseClient] = []
    try:
        with Sampler(d, ctx.pg_dsn) as sampler:
            agent_id = await api.agent("bench streams", ["test_math"])
            await warm_up(api, agent_id)
            ids = await api.sessions(agent_id, sessions)
            sampler.reset()
            started = time.time()
            client_cpu = own_cpu()
            deadline = started + cap
            probe = PublishProbe(d).start()
            owner: dict[SseClient, str] = {}
            for s in ids:
                for _ in range(per_session):
                    client = SseClient(d.base_url, f"{api.session_path(agent_id, s)}/events", api.headers).start()
                    clients.append(client)
                    owner[client] = s
            try:
                await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in clients)), 60)
            except TimeoutError:
                pass
            opened = [c for c in clients if c.opened_at]
            open_s = max((c.opened_at for c in opened), default=started) - started
            with ctx.profiling("streams", d):
                turns_started = time.time()
                posts = await bounded(100, [lambda s=s: api.post_message(agent_id, s) for s in ids])
                accepted = {s for s, p in zip(ids, posts, strict=True) if p["status"] == 201}
                # Until every session is idle again...
                while time.time() < deadline:
                    await asyncio.sleep(POLL_SECONDS)
                    idle = {s["id"] for s in await api.all_sessions(agent_id) if s["status"] in ("pending", "failed")}
                    if accepted <= idle:
                        break
            turns_s = time.time() - turns_started
            # ...then until every client has the last stored event of its session (or the cap).
            expected = dict(
                zip(ids, await bounded(16, [lambda s=s: api.all_events(agent_id, s) for s in ids]), strict=True)
            )
            by_client = [(c, expected[owner[c]]) for c in clients]
            grace_until = max(deadline, time.time() + 10)
            for c, events in by_client:
                last = events[-1]["sequence"] if events else 0
                await c.wait_for(lambda e, last=last: e[2] is not None and e[2] >= last, grace_until - time.time())
            maxima = dict(sampler.maxima)
        finished = time.time()
        published = await probe.stop()
        client_cpu = own_cpu() - client_cpu
        for c in clients:
            await c.stop()
        checks = [_exactly_once(c, events) for c, events in by_client]
        ok = sum(1 for problem in checks if problem is None)
        delays = []
        for c, _events in by_client:
            for received, _type, _seq, data in c.stored():
                created = parse_time(data["created_at"])
                if c.opened_at and created >= c.opened_at:
                    delays.append((received - created) * 1000)
        delivery = summary(delays)
        result.distributions["SSE delivery, all clients"] = {
            **distribution(delays, "delivery"),
            "target_ms": 200,
        }
        if finished > deadline:
            result.status = f"did not finish in {cap:g} s"
        result.figures = {
            "sessions": sessions,
            "clients": clients_total,
            "clients_opened": len(opened),
            "open_all_s": open_s,
            "turns_accepted": len(accepted),
            "post_errors": [p.get("error") for p in posts if p["status"] != 201][:3],
            "turns_s": turns_s,
            "clients_exactly_once": ok,
            "problems": [p for p in checks if p][:10],
            "clients_with_drops": sum(1 for c in clients if c.errors),
            "drops": sum(len(c.errors) for c in clients),
            "drop_samples": sorted({e for c in clients for e in c.errors})[:8],
            "bench_client_cpu_s": client_cpu,
            "bench_client_cpu_pct": client_cpu / (finished - started) * 100,
            "delivery_ms": delivery,
            # created_at to the moment the event is on Redis (the worker's commit and publish): the part of the
            # delivery delay that is the worker's, not the web process's or the bench client's
            "published_ms": summary(published) if published is not None else None,
            "resources": maxima,
            "sampler_errors": sampler.errors[:5],
        }
        result.target(
            "streams.exactly_once_pct",
            f"{clients_total} clients with every event once, in order",
            ">=",
            100,
            "%",
            ok / clients_total * 100,
            f"{ok}/{clients_total}; {sum(1 for c in clients if c.errors and c.opened_at)} streams broke and resumed, "
            f"{sum(1 for c in clients if c.opened_at is None)} never opened",
        )
        result.target("streams.delivery_p99", "delivery p99 from created_at", "<=", 200, "ms", delivery.get("p99"))
        result.target("streams.web_rss", "web RSS (max)", "<=", 300, "MB", maxima.get("web_rss_mb"))
        result.target("streams.web_threads", "web OS threads (max)", "<=", 49, "", maxima.get("web_threads"))
        result.target(
            "streams.pg_connections",
            "web's PostgreSQL connections (max)",
            "<=",
            10,
            "",
            maxima.get("pg_connections_web"),
            f"streams open, turns running; includes the {sessions} POSTs that start them",
        )
        result.notes.append(
            "Delivery latency is receive time minus the event's created_at, which the server sets at insert, before "
            "commit: it is an upper bound of commit-to-client. Only events created after the client's stream opened."
        )
    finally:
        for c in clients:
            await c.stop()
        await api.close()
        ctx.undeploy(d)
    return result


def _exactly_once(client: SseClient, expected: list[dict]) -> str | None:
    """None when the client saw exactly the stored events, once each and in order; else what went wrong."""
    got = [(e[2], e[3].get("id")) for e in client.stored()]
    want = [(e["sequence"], e["id"]) for e in expected]
    if got == want:
        return None
    seqs = [g[0] for g in got]
    missing = sorted({w[0] for w in want} - set(seqs))
    duplicates = len(seqs) - len(set(seqs))
    unordered = any(b <= a for a, b in zip(seqs, seqs[1:], strict=False))
    return (
        f"{client.path}: {len(got)} of {len(want)} events, missing {missing[:5]}, "
        f"{duplicates} duplicates, {'out of order' if unordered else 'in order'}"
        + (f", {len(client.errors)} drops, last: {client.error}" if client.errors else "")
    )


# --- 3. API ------------------------------------------------------------------------------------------


async def api_rates(ctx: Context) -> Result:
    result = Result()
    clients, seconds, warm = (16, 2.0, 0.3) if ctx.quick else (16, 10.0, 1.0)
    d = ctx.deploy("api")
    api = Api(d.base_url, ctx.api_key)
    try:
        with Sampler(d, ctx.pg_dsn) as sampler:
            agent_id = await api.agent("bench api", [])
            await warm_up(api, agent_id)  # the idle worker's litellm import would otherwise share the CPU
            (session_id,) = await api.sessions(agent_id, 1)
            floor_status = (await api.http.get("/bench/ping")).status_code
            phases = [
                ("floor", "trivial view (GET /bench/ping)", "GET", "/bench/ping", b""),
                ("get_session", "GET session", "GET", api.session_path(agent_id, session_id), b""),
                ("create_session", "create session", "POST", f"/v1/agents/{agent_id}/sessions", b"{}"),
            ]
            if floor_status != 200:
                phases = phases[1:]
                result.notes.append(
                    f"GET /bench/ping -> {floor_status}: the server runs without EVERRUNS_BENCH_ROUTES=1, no floor"
                )
            rates = {}
            for name, label, method, path, body in phases:
                await _hammer(d.base_url, api.headers, clients, warm, method, path, body)
                sampler.reset()
                before = sampler.cpu()
                with ctx.profiling(f"api-{name}", d):
                    measured = await _hammer(d.base_url, api.headers, clients, seconds, method, path, body)
                latencies, statuses, elapsed = measured
                cpu = cpu_delta(before, sampler.cpu())
                good = sum(n for code, n in statuses.items() if 200 <= code < 300)
                rates[name] = good / elapsed
                result.figures[name] = {
                    "requests": sum(statuses.values()),
                    "statuses": {str(k): v for k, v in statuses.items()},
                    "req_per_s": rates[name],
                    "latency_ms": summary(latencies),
                    "cpu_s": cpu,
                    "resources": dict(sampler.maxima),
                }
                result.distributions[label] = distribution(latencies, "api")
        floor = rates.get("floor")
        result.target("api.get_session_rps", "GET session, 16 clients", ">=", 800, "req/s", rates.get("get_session"))
        result.target(
            "api.create_session_rps", "create session, 16 clients", ">=", 500, "req/s", rates.get("create_session")
        )
        result.target(
            "api.get_vs_floor_pct",
            "GET session vs trivial view",
            ">=",
            60,
            "%",
            rates["get_session"] / floor * 100 if floor else None,
            f"trivial view {floor:.0f} req/s; create session {rates['create_session'] / floor * 100:.0f} %"
            if floor
            else "no trivial view",
        )
        result.figures["clients"], result.figures["seconds"] = clients, seconds
        result.notes.append(
            "Requests come from a lean keep-alive HTTP/1.1 client (bench/client.py RawHttp); its own CPU is in "
            "cpu_s.bench_client."
        )
    finally:
        await api.close()
        ctx.undeploy(d)
    return result


async def _hammer(base_url, headers, clients: int, seconds: float, method: str, path: str, body: bytes):
    """`clients` connections, each sending the next request as soon as the last one is answered."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds

    async def one():
        conn = RawHttp(base_url, headers)
        try:
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                try:
                    code, _ = await conn.request(method, path, body)
                except (OSError, ValueError, asyncio.IncompleteReadError):
                    code = 0  # counted as a failure; a fresh connection next time
                    await conn.close()
                    await asyncio.sleep(0.01)
                latencies.append((time.perf_counter() - sent) * 1000)
                statuses[code] = statuses.get(code, 0) + 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - started


# --- 4. Instant turns --------------------------------------------------------------------------------


async def instant(ctx: Context) -> Result:
    result = Result()
    sessions, turns, sequential, cap = (5, 3, 5, 40) if ctx.quick else (20, 5, 20, 120)
    d = ctx.deploy("instant")
    api = Api(d.base_url, ctx.api_key)
    streams: list[SseClient] = []
    try:
        with Sampler(d, ctx.pg_dsn) as sampler:
            agent_id = await api.agent("bench instant", ["test_math"])
            await warm_up(api, agent_id, turns=3)
            ids = await api.sessions(agent_id, sessions + 1)
            streams = [
                SseClient(d.base_url, f"{api.session_path(agent_id, s)}/events", api.headers).start() for s in ids
            ]
            await asyncio.wait_for(asyncio.gather(*(s.opened.wait() for s in streams)), 60)
            if any(s.opened_at is None for s in streams):
                raise BenchError(f"streams did not open: {[s.error for s in streams if s.opened_at is None][:3]}")
            deadline = time.time() + cap

            # Concurrent: each client posts its next message when its last turn has ended.
            sampler.reset()
            before = sampler.cpu()
            started = time.time()
            with ctx.profiling("instant", d):
                outcomes = await asyncio.gather(
                    *(_turns(api, agent_id, ids[i], streams[i], turns, deadline) for i in range(sessions))
                )
            wall = time.time() - started
            cpu = cpu_delta(before, sampler.cpu())
            concurrent = [o for client in outcomes for o in client]
            # One at a time, on the spare session.
            before_seq = sampler.cpu()
            single = await _turns(api, agent_id, ids[-1], streams[-1], sequential, deadline)
            cpu_seq = cpu_delta(before_seq, sampler.cpu())
            maxima = dict(sampler.maxima)
        ended = [o for o in concurrent if o["ok"]]
        seq_ok = [o for o in single if o["ok"]]
        rate = len(ended) / wall if wall else None
        per_turn = _cpu_per_turn(cpu, len(ended))
        per_turn_seq = _cpu_per_turn(cpu_seq, len(seq_ok))
        seq_latency = [o["latency_ms"] for o in seq_ok]
        expected = sessions * turns
        if len(ended) < expected or len(seq_ok) < sequential:
            result.status = f"did not finish in {cap:g} s" if time.time() > deadline else "some turns failed"
        result.distributions[f"instant: {sessions} sessions x {turns} turns at once"] = distribution(
            [o["latency_ms"] for o in ended], "turn"
        )
        result.distributions["instant: one turn at a time"] = {**distribution(seq_latency, "turn"), "target_ms": 40}
        result.figures = {
            "sessions": sessions,
            "turns_per_session": turns,
            "turns_ended": len(ended),
            "turns_failed": [o.get("error") for o in concurrent if not o["ok"]][:5],
            "wall_s": wall,
            "turns_per_s": rate,
            "concurrent_latency_ms": summary([o["latency_ms"] for o in ended]),
            "concurrent_server_ms": summary([o["server_ms"] for o in ended]),
            "cpu_s": cpu,
            "cpu_ms_per_turn": per_turn,
            "sequential_turns": len(seq_ok),
            "sequential_latency_ms": summary(seq_latency),
            "sequential_server_ms": summary([o["server_ms"] for o in seq_ok]),
            "sequential_cpu_s": cpu_seq,
            "sequential_cpu_ms_per_turn": per_turn_seq,
            "resources": maxima,
        }
        label = f"{sessions} sessions x {turns} turns at once"
        result.target("instant.turns_per_s", label, ">=", 50, "turns/s", rate, f"{len(ended)}/{expected} turns")
        result.target(
            "instant.cpu_per_turn",
            "CPU per 2-call tool turn (web+worker+PG+Redis)",
            "<=",
            35,
            "ms",
            per_turn.get("servers"),
            _cpu_note(per_turn),
        )
        result.target(
            "instant.sequential_median",
            "one turn at a time, median",
            "<=",
            40,
            "ms",
            percentile(seq_latency, 50),
            f"p90 {_round(percentile(seq_latency, 90))} ms, server-side median "
            f"{_round(percentile([o['server_ms'] for o in seq_ok], 50))} ms",
        )
        result.notes.append(
            "A turn's latency is from the client starting its POST to its SSE stream delivering the end of that turn "
            "(session.status pending with the turn's id); server_ms is message.user created_at to that event's."
        )
    finally:
        for s in streams:
            await s.stop()
        await api.close()
        ctx.undeploy(d)
    return result


async def _turns(api: Api, agent_id: str, session_id: str, stream: SseClient, turns: int, deadline: float) -> list:
    out = []
    for _ in range(turns):
        remaining = deadline - time.time()
        if remaining <= 0:
            break
        posted = await api.post_message(agent_id, session_id)
        if posted["status"] != 201:
            out.append({"ok": False, "error": f"POST {posted['status']}: {posted.get('error')}"})
            continue
        user = await stream.wait_for(turn_of_message(posted["message"]["id"]), deadline - time.time())
        if user is None:
            out.append({"ok": False, "error": f"message.user never arrived ({stream.error})"})
            break
        began = await stream.wait_for(turn_started_by(posted["message"]["id"]), deadline - time.time(), start=user)
        if began is None:
            out.append({"ok": False, "error": f"turn.started never arrived ({stream.error})"})
            break
        turn_id = stream.events[began][3]["turn_id"]
        end = await stream.wait_for(turn_ended(turn_id), deadline - time.time(), start=began)
        if end is None:
            out.append({"ok": False, "error": f"turn {turn_id} did not end in time ({stream.error})"})
            break
        received, event_type, _, data = stream.events[end]
        failed = event_type == "turn.failed" or data.get("data", {}).get("status") == "failed"
        server_ms = (parse_time(data["created_at"]) - parse_time(stream.events[user][3]["created_at"])) * 1000
        out.append(
            {
                "ok": not failed,
                "error": data.get("data") if failed else None,
                "latency_ms": (received - posted["started"]) * 1000,
                "server_ms": server_ms,
            }
        )
    return out


def _cpu_per_turn(cpu: dict, turns: int) -> dict:
    if not turns:
        return {}
    out = {k: v * 1000 / turns for k, v in cpu.items() if v is not None}
    servers = [cpu.get(k) for k in ("web", "worker", "postgres", "redis")]
    if all(v is not None for v in servers):
        out["servers"] = sum(servers) * 1000 / turns
    return out


def _cpu_note(per_turn: dict) -> str:
    parts = [f"{k} {_round(per_turn.get(k))}" for k in ("web", "worker", "postgres", "redis") if k in per_turn]
    return "ms: " + ", ".join(parts) if parts else "needs the process ids (managed run, or --web-pid/--worker-pid)"


def _round(value: float | None):
    return None if value is None else round(value, 1)


# --- 5. Start ----------------------------------------------------------------------------------------


async def start(ctx: Context) -> Result:
    result = Result()
    if not ctx.stack:
        result.status = "skipped: the bench must start the processes itself (no --target)"
        return result
    runs = 1 if ctx.quick else 3
    webs = []
    for _ in range(runs):
        d = ctx.stack.deploy("start", workers=0)
        ctx.started.append({"name": "start", **d.started})
        try:
            figures = dict(d.started["web"])
            api = Api(d.base_url, ctx.api_key)
            first = time.perf_counter()
            await api.call("GET", "/v1/agents?limit=1")
            figures["first_request_ms"] = (time.perf_counter() - first) * 1000
            await api.close()
            webs.append(figures)
        finally:
            ctx.stack.undeploy(d)
    d = ctx.stack.deploy("start-worker", workers=1)
    ctx.started.append({"name": "start-worker", **d.started})
    try:
        worker = dict(d.started["worker0"])
    finally:
        ctx.stack.undeploy(d)
    ready = [w["ready_s"] for w in webs]
    rss = [w["rss_mb"] for w in webs]
    result.figures = {"web_runs": webs, "worker": worker}
    result.target(
        "start.web_ready",
        "web ready (accepts connections)",
        "<=",
        2,
        "s",
        percentile(ready, 50),
        f"median of {runs}; max {max(ready):.2f} s",
    )
    result.target(
        "start.web_rss",
        "web RSS when ready, before any request",
        "<=",
        120,
        "MB",
        max(rss),
        f"max of {runs}; first request {webs[0]['first_request_ms']:.0f} ms",
    )
    result.notes.append(f"worker: ready in {worker['ready_s']:.2f} s at {worker['rss_mb']:.0f} MB (not a target)")
    return result


SCENARIOS: dict[str, Callable[[Context], Awaitable[Result]]] = {
    "start": start,
    "api": api_rates,
    "instant": instant,
    "streams": streams,
    "waiting": waiting,
}
