"""The answers of the routes served in front of Django (everruns/front/routes.py): JSON bodies and the error
envelope, with the headers Django's stack would have given them, in one place."""

import json
import logging

from everruns.api.auth import Denied
from everruns.api.errors import RETRY_UNAVAILABLE_SECONDS, UNAVAILABLE, envelope

logger = logging.getLogger(__name__)


def json_response(status: int, body, extra_headers: list | None = None) -> tuple[int, list, bytes]:
    """(status, headers, payload) of a JSON answer, as DRF's JSONRenderer writes it (compact, UTF-8)."""
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    return status, headers + (extra_headers or []), payload


async def send_answer(send, answer: tuple[int, list, bytes]) -> None:
    status, headers, payload = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def send_json(send, status: int, body, extra_headers: list | None = None) -> None:
    await send_answer(send, json_response(status, body, extra_headers))


def refusal_response(refusal: Denied) -> tuple[int, list, bytes]:
    """A refusal as the JSON envelope, with the Bearer challenge on a 401."""
    extra = [(b"www-authenticate", b'Bearer realm="everruns"')] if refusal.status == 401 else []
    return json_response(refusal.status, envelope(refusal.code, refusal.message), extra)


async def denied(send, refusal: Denied) -> None:
    """A refusal before the response started."""
    await send_answer(send, refusal_response(refusal))


def unavailable_response(exc) -> tuple[int, list, bytes]:
    """The database is away: 503 with Retry-After (EventSource retries on its own)."""
    logger.warning("database unavailable: %s", exc)
    retry = [(b"retry-after", str(RETRY_UNAVAILABLE_SECONDS).encode())]
    return json_response(503, envelope(*UNAVAILABLE), retry)


async def unavailable(send, exc) -> None:
    await send_answer(send, unavailable_response(exc))
