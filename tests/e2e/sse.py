"""A small SSE reader for tests: bounded in time, keeps every event it saw."""

import json
import time

import requests
import sseclient


class Stream:
    def __init__(self, url: str, last_event_id: str | None = None, timeout: float = 30.0):
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(url, stream=True, headers=headers, timeout=(5, 10))
        self.response.raise_for_status()
        self.client = sseclient.SSEClient(self.response)
        self.iterator = self.client.events()
        self.deadline = time.monotonic() + timeout
        self.events: list[dict] = []  # {"event", "id", "data"}

    def read_until(self, predicate) -> list[dict]:
        for raw in self.iterator:
            if time.monotonic() > self.deadline:
                raise AssertionError(f"SSE deadline passed; saw {[e['event'] for e in self.events]}")
            if not raw.event or raw.event == "message":
                continue
            item = {"event": raw.event, "id": raw.id, "data": json.loads(raw.data)}
            self.events.append(item)
            if predicate(item):
                return self.events
        raise AssertionError(f"stream ended; saw {[e['event'] for e in self.events]}")

    def close(self) -> None:
        self.response.close()

    def stored(self) -> list[dict]:
        return [e for e in self.events if e["data"].get("sequence") is not None]


def turn_done(item: dict) -> bool:
    return item["event"] == "session.status" and item["data"]["data"]["status"] in ("pending", "failed")
