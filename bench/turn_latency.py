"""Median time from POST message to the session's return to `pending`, against a running server.

Usage: python bench/turn_latency.py [--base http://localhost:9000] [--turns 30] [--model-id UUID]
Polls the session every 5 ms; prints median, p90, min and max in milliseconds.
"""

import argparse
import statistics
import time

import requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://localhost:9000")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--model-id", default=None)
    args = parser.parse_args()
    http = requests.Session()
    agent = http.post(f"{args.base}/v1/agents", json={"name": "bench", "system_prompt": "Be brief."}).json()
    body = {"model_id": args.model_id} if args.model_id else {}
    session = http.post(f"{args.base}/v1/agents/{agent['id']}/sessions", json=body).json()
    path = f"{args.base}/v1/agents/{agent['id']}/sessions/{session['id']}"
    timings = []
    for i in range(args.turns):
        started = time.perf_counter()
        response = http.post(
            f"{path}/messages", json={"message": {"content": [{"type": "text", "text": f"What is {i} + 1?"}]}}
        )
        response.raise_for_status()
        while True:
            status = http.get(path).json()["status"]
            if status == "pending":
                break
            if status == "failed":
                raise SystemExit(f"turn failed: {http.get(path).json()['error']}")
            time.sleep(0.005)
        timings.append((time.perf_counter() - started) * 1000)
    http.delete(path)
    http.delete(f"{args.base}/v1/agents/{agent['id']}")
    timings.sort()
    print(
        f"turns={len(timings)} median={statistics.median(timings):.1f}ms "
        f"p90={timings[int(len(timings) * 0.9) - 1]:.1f}ms min={timings[0]:.1f}ms max={timings[-1]:.1f}ms"
    )


if __name__ == "__main__":
    main()
