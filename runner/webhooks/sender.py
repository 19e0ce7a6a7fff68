"""The worker's webhook sender: a small pool of threads that make delivery attempts, fed by the per-delivery Celery
task (the wake-up after the event commits) and by a sweep every WEBHOOK_SWEEP_SECONDS (retries that fall due, and
deliveries whose wake-up was lost to a crash or a broker outage).

Attempts run on their own threads, never on the broker's or the turns' ones, so a slow endpoint delays no turn; and
at most WEBHOOK_MAX_IN_FLIGHT attempts of one webhook run at once in the whole deployment
(sessions.webhooks.deliveries), so it holds at most that many threads and other endpoints keep theirs."""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import connection
from standardwebhooks.webhooks import Webhook as Signer

from everruns.core import netguard
from sessions.webhooks import deliveries

logger = logging.getLogger(__name__)
READ_BYTES = 4096  # of an answer's body, for its excerpt; the rest is not read
USER_AGENT = "Everruns-Webhooks/1"


def signature_header(msg_id: str, timestamp: datetime, body: str, secrets: list[str]) -> str:
    """`v1,<sig>` per secret, space-separated (Standard Webhooks; two during a rotation's overlap)."""
    return " ".join(Signer(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body) for secret in secrets)


def headers_for(attempt: deliveries.Attempt, now: datetime) -> dict:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": attempt.delivery_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature_header(attempt.delivery_id, now, attempt.body, attempt.secrets),
    }


def _post(attempt: deliveries.Attempt) -> tuple[int | None, str | None, str | None]:
    """One POST: (status code, error, excerpt of the answer). No redirect is followed (a 3xx is a failure); the
    target is checked against the address guard first, every attempt (DNS may have changed), and the connection
    goes to the address that was checked (netguard's transport: a DNS answer that changes in between cannot
    turn it to a private one)."""
    try:
        netguard.check_url(attempt.url, settings.WEBHOOK_ALLOWED_HOSTS)
    except netguard.RefusedAddress as exc:
        return None, str(exc), None
    now = datetime.now(UTC).replace(microsecond=0)
    deadline = time.monotonic() + settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        transport = netguard.GuardedTransport(lambda: settings.WEBHOOK_ALLOWED_HOSTS)
        with httpx.Client(
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False, transport=transport
        ) as client:
            body = attempt.body.encode()
            with client.stream("POST", attempt.url, content=body, headers=headers_for(attempt, now)) as response:
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= READ_BYTES or time.monotonic() > deadline:
                        break
                excerpt = b"".join(chunks)[:READ_BYTES].decode(errors="replace")
                return response.status_code, None, excerpt
    except netguard.RefusedAddress as exc:
        return None, str(exc), None
    except httpx.TimeoutException as exc:
        return None, f"timed out after {settings.WEBHOOK_TIMEOUT_SECONDS:g} s ({type(exc).__name__})", None
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}", None


def attempt_once(delivery_id: str) -> str | None:
    """Claim, send and record one attempt of a delivery; its status after, or None if nothing was sent."""
    try:
        attempt = deliveries.attempt_claim(delivery_id)
        if attempt is None:
            return None
        status_code, error, excerpt = _post(attempt)
        host = urlsplit(attempt.url).hostname
        logger.info(
            "webhook delivery %s to %s: attempt %d -> %s", delivery_id, host, attempt.number, status_code or error
        )
        return deliveries.attempt_record(attempt, status_code=status_code, error=error, excerpt=excerpt)
    except Exception:
        # A broken connection (a database restart) must not break this thread's next attempt; the claim lapses
        # and the sweep tries again.
        logger.warning("webhook delivery %s failed", delivery_id, exc_info=True)
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        return None


class Sender:
    def __init__(self, *, threads: int):
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="webhook-send")
        self.queued: set[str] = set()  # submitted and not yet done here: a sweep does not submit them twice
        self.lock = threading.Lock()
        self.sweeping = False

    def submit(self, delivery_id: str) -> None:
        with self.lock:
            if delivery_id in self.queued:
                return
            self.queued.add(delivery_id)
        self.pool.submit(self._run, delivery_id)

    def _run(self, delivery_id: str) -> None:
        try:
            attempt_once(delivery_id)
        finally:
            with self.lock:
                self.queued.discard(delivery_id)

    def sweep_once(self) -> int:
        ids = deliveries.due_ids()
        for delivery_id in ids:
            self.submit(delivery_id)
        return len(ids)

    def start_sweeper(self) -> None:
        if settings.WEBHOOK_SWEEP_SECONDS > 0 and not self.sweeping:
            self.sweeping = True
            threading.Thread(target=self._sweep, name="webhook-sweep", daemon=True).start()

    def _sweep(self) -> None:
        while True:
            time.sleep(settings.WEBHOOK_SWEEP_SECONDS)
            try:
                self.sweep_once()
            except Exception:
                logger.warning("webhook sweep failed", exc_info=True)
                if connection.connection is not None and not connection.is_usable():
                    connection.close()


_sender: Sender | None = None
_sender_lock = threading.Lock()


def sender() -> Sender:
    """This process's sender, started on first use."""
    global _sender
    if _sender is None:
        with _sender_lock:
            if _sender is None:
                _sender = Sender(threads=settings.WEBHOOK_SENDER_THREADS)
    return _sender
