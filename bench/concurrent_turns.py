"""Throughput and latency of concurrent turns: N sessions each post M messages, in parallel.

Usage: python bench/concurrent_turns.py [--base http://localhost:9000] [--sessions 20] [--turns 5] [--poll-ms 100]
Each client waits for `pending` (polling every --poll-ms) before its next message. Prints turns/s,
median and p90 POST -> pending, and any failed turns.
"""

import argparse
import statistics
import threading
import time

import requests


def client(base: str, turns: int, timings: list, failures: list, agent_id: str, poll: float) -> None:
    http = requests.Session()
    session = http.post(f"{base}/v1/agents/{agent_id}/sessions", json={}).json()
    path = f"{base}/v1/agents/{agent_id}/sessions/{session['id']}"
    for i in range(turns):
        started = time.perf_counter()
        response = http.post(
            f"{path}/messages", json={"message": {"content": [{"type": "text", "text": f"What is {i} + 2?"}]}}
        )
        if response.status_code != 201:
            failures.append(f"POST {response.status_code}: {response.text[:200]}")
            return
        while True:
            state = http.get(path).json()
            if state["status"] == "pending":
                break
            if state["status"] == "failed":
                failures.append(str(state["error"]))
                break
            time.sleep(poll)
        timings.append((time.perf_counter() - started) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://localhost:9000")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--poll-ms", type=float, default=100)
    args = parser.parse_args()
    agent = requests.post(
        f"{args.base}/v1/agents", json={"name": "bench-concurrent", "system_prompt": "Be brief."}
    ).json()
    timings, failures = [], []
    threads = [
        threading.Thread(
            target=client, args=(args.base, args.turns, timings, failures, agent["id"], args.poll_ms / 1000)
        )
        for _ in range(args.sessions)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    requests.delete(f"{args.base}/v1/agents/{agent['id']}")
    timings.sort()
    print(
        f"sessions={args.sessions} turns={len(timings)} failed={len(failures)} elapsed={elapsed:.1f}s "
        f"throughput={len(timings) / elapsed:.1f} turns/s median={statistics.median(timings):.0f}ms "
        f"p90={timings[int(len(timings) * 0.9) - 1]:.0f}ms"
    )
    for failure in failures[:5]:
        print("  failure:", failure)


if __name__ == "__main__":
    main()
