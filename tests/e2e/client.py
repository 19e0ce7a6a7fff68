"""HTTP helpers for end-to-end tests: the API as a client uses it."""

import requests

from tests.e2e.sse import Stream, turn_done


def open_session(base: str, agent: dict | None = None, session: dict | None = None) -> str:
    """Create an agent and a session on it; returns the session's URL."""
    agent = requests.post(f"{base}/v1/agents", json={"name": "e2e", "system_prompt": "Be brief.", **(agent or {})})
    agent.raise_for_status()
    created = requests.post(f"{base}/v1/agents/{agent.json()['id']}/sessions", json=session or {})
    created.raise_for_status()
    return f"{base}/v1/agents/{agent.json()['id']}/sessions/{created.json()['id']}"


def say(session_url: str, text: str, **extra) -> requests.Response:
    return requests.post(
        f"{session_url}/messages", json={"message": {"content": [{"type": "text", "text": text}]}, **extra}
    )


def watch_turn(session_url: str, text: str, **extra):
    """Open the session's stream, post `text`, and read until the turn ends; returns the Stream."""

    stream = Stream(f"{session_url}/events")
    try:
        response = say(session_url, text, **extra)
        assert response.status_code == 201, response.text
        stream.read_until(turn_done)
    finally:
        stream.close()
    return stream
