"""The HTTP side: one httpx client for a deployment, its error envelope as ApiError, and the lookups the
commands share (paging through a list, the agent that holds a session, the last event of a session)."""

import uuid
from collections.abc import Iterator

import httpx

from everruns_cli import __version__

TIMEOUT = httpx.Timeout(30.0)
# An open event stream gets a keep-alive comment at least every 15 s (the contract): a read that waits four
# times that long means the connection is gone without a word, and the stream reconnects.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)
PAGE = 500  # the API's largest page


class ApiError(Exception):
    """An answer outside 2xx (status and the envelope's code and message), or no answer at all (status 0)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ApiError":
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
            details = error.get("details") or {}
        except (ValueError, KeyError, TypeError):
            code, message, details = "http_error", f"HTTP {response.status_code}", {}
        return cls(response.status_code, code, message + _details_line(details))


def _details_line(details) -> str:
    """Field errors on the same line as the message (`name: This field is required.`)."""
    if not isinstance(details, dict) or not details:
        return ""
    parts = []
    for field, messages in details.items():
        text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
        parts.append(f"{field}: {text}")
    return " (" + "; ".join(parts) + ")"


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Api:
    def __init__(self, url: str, api_key: str | None = None, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"everruns-cli/{__version__}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT, transport=transport)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    def health(self) -> tuple[int, dict]:
        """`/health` answers 503 with a body when a dependency is down: both are the answer."""
        try:
            response = self.http.get("/health")
            return response.status_code, response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.url}: {exc}") from exc

    def get(self, path: str, **params) -> dict:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path: str, body: dict | None = None) -> dict:
        response = self.request("POST", path, json=body if body is not None else {})
        return response.json() if response.content else {}

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def items(self, path: str, **params) -> Iterator[dict]:
        """Every item of a list, page by page."""
        offset = 0
        while True:
            page = self.get(path, limit=PAGE, offset=offset, **params)
            yield from page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    def open_stream(self, agent_id: str, session_id: str, after: int) -> httpx.Response:
        """The session's event stream after the cursor `after` (0: from its first event), headers received."""
        headers = {"Accept": "text/event-stream"}
        if after:
            headers["Last-Event-ID"] = str(after)
        request = self.http.build_request(
            "GET", f"/v1/agents/{agent_id}/sessions/{session_id}/events", headers=headers, timeout=STREAM_TIMEOUT
        )
        response = self.http.send(request, stream=True)
        if response.status_code != 200:
            response.read()
            response.close()
            raise ApiError.from_response(response)
        return response


def session_path(agent_id: str, session_id: str) -> str:
    return f"/v1/agents/{agent_id}/sessions/{session_id}"


def find_agent_of_session(api: Api, session_id: str) -> str:
    """The agent that holds a session. The API addresses a session only under its agent and has no lookup
    by session id, so this asks each agent (archived ones too), newest first: 1 + (agents) requests at worst.
    `--agent` skips it."""
    if is_uuid(session_id):
        for agent in api.items("/v1/agents", status="all"):
            try:
                api.get(session_path(agent["id"], session_id))
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            return agent["id"]
    raise ApiError(404, "not_found", "Session not found")


def last_sequence(api: Api, agent_id: str, session_id: str) -> int:
    """The sequence of the session's last event (0 when it has none): a stream opened after it shows only
    what happens from now on."""
    path = f"{session_path(agent_id, session_id)}/events"
    total = api.get(path, limit=1)["total"]
    if not total:
        return 0
    last = api.get(path, limit=1, offset=total - 1)["items"]
    return last[-1]["sequence"] if last else 0
