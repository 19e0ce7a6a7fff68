"""One LLM call has a wall-clock deadline (LLM_TIMEOUT_SECONDS, or the provider's `settings.timeout`):
a provider that never finishes is abandoned at the deadline and the attempt counts as a timeout."""

import time

import pytest

from runner import llm
from runner.errors import TurnErrorCode
from sessions.models import Event, Session
from tests.factories import make_model
from tests.runner.helpers import new_session, post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx")


def test_a_call_slower_than_its_deadline_times_out_at_the_deadline(settings):
    settings.LLM_MAX_RETRIES = 0
    llm.warm_up()  # as a worker does at start: the import is not part of the call
    # The simulated model waits 30 s before its first token; its provider allows a call 1 s (the least).
    slow = make_model(model_id="llmsim-deadline", settings={"latency_ms": 30000, "timeout": 1})
    session = new_session()
    Session.objects.filter(pk=session.pk).update(model=slow)
    post_user(session, "hello")
    started = time.monotonic()
    turn = run_active_turn(session)
    elapsed = time.monotonic() - started
    assert turn.status == "failed" and turn.error["code"] == TurnErrorCode.LLM_TIMEOUT
    assert "limit of 1 s" in turn.error["message"]
    assert elapsed < 5, f"the call ran {elapsed:.1f} s past a 1 s deadline"
    assert Event.objects.filter(session=session, type="llm.started").count() == 1


def test_a_timed_out_call_is_retried_as_transient(settings):
    settings.LLM_MAX_RETRIES = 1
    settings.LLM_RETRY_BASE_MS = settings.LLM_RETRY_MAX_MS = 10
    slow = make_model(model_id="llmsim-deadline-retry", settings={"latency_ms": 30000, "timeout": 1})
    session = new_session()
    Session.objects.filter(pk=session.pk).update(model=slow)
    post_user(session, "hello")
    turn = run_active_turn(session)
    retrying = Event.objects.filter(session=session, type="llm.retrying").get()
    assert retrying.data["error"]["code"] == TurnErrorCode.LLM_TIMEOUT
    assert turn.error["code"] == TurnErrorCode.LLM_TIMEOUT
