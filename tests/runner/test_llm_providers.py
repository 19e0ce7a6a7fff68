"""Providers and models at turn time, through litellm's real openai/ HTTP path to the fake server."""

import io
import json
import logging
import socket

import litellm
import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from agents import secrets
from agents.models import Agent, LlmModel, LlmProvider
from sessions.models import Event, Message, Session, Turn
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import messages, post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx")


@pytest.fixture
def fast_retries(settings):
    settings.LLM_RETRY_BASE_MS = 10
    settings.LLM_RETRY_MAX_MS = 50
    settings.LLM_MAX_RETRIES = 3


def fake(fake_llm, model_id, **extra):
    return make_model(provider_type="openai_compatible", model_id=model_id, base_url=fake_llm.base_url, **extra)


def test_resolution_order_controls_session_agent_default(fake_llm, settings):
    m_default, m_agent, m_session, m_controls = (
        fake(fake_llm, n) for n in ("m-default", "m-agent", "m-session", "m-controls")
    )
    LlmModel.objects.update(is_default=False)
    LlmModel.objects.filter(pk=m_default.pk).update(is_default=True)
    agent = make_agent()
    session = make_session(agent)

    def used():
        run_active_turn(session)
        return fake_llm.requests[-1]["model"]

    post_user(session, "a")
    assert used() == "m-default"
    Agent.objects.filter(pk=agent.pk).update(default_model=m_agent)
    post_user(session, "b")
    assert used() == "m-agent"
    Session.objects.filter(pk=session.pk).update(model=m_session)
    post_user(session, "c")
    assert used() == "m-session"
    post_user(session, "d", controls={"model_id": str(m_controls.pk)})
    assert used() == "m-controls"
    assert messages(session)[-1].metadata["model"] == "m-controls"


def test_everruns_default_model_replaces_the_seeded_default(fake_llm, settings, monkeypatch):
    settings.EVERRUNS_DEFAULT_MODEL = "openai/env-model"
    monkeypatch.setenv("OPENAI_API_BASE", fake_llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-0000")
    session = make_session()
    post_user(session, "hi")
    assert run_active_turn(session).status == "completed"
    assert fake_llm.requests[-1]["model"] == "env-model"


def test_everruns_default_model_comes_after_the_agents_model_and_before_the_global_default(
    fake_llm, settings, monkeypatch
):
    settings.EVERRUNS_DEFAULT_MODEL = "openai/env-model"
    monkeypatch.setenv("OPENAI_API_BASE", fake_llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-0000")
    agent = make_agent()
    session = make_session(agent)

    def used():
        assert run_active_turn(session).status == "completed"
        return fake_llm.requests[-1]["model"]

    post_user(session, "a")
    assert used() == "env-model"  # over the seeded global default (llmsim-1 would not reach the server)
    Agent.objects.filter(pk=agent.pk).update(default_model=fake(fake_llm, "m-agent"))
    post_user(session, "b")
    assert used() == "m-agent"  # the agent's model wins over EVERRUNS_DEFAULT_MODEL


def test_a_provider_without_a_key_fails_with_provider_key_missing(fake_llm):
    openai = LlmModel.objects.get(model_id="gpt-4o-mini", provider__provider_type="openai")
    session = make_session(model_id=openai.pk)
    post_user(session, "hi")
    run_active_turn(session)
    session.refresh_from_db()
    assert session.status == "failed" and session.error["code"] == "provider_key_missing"
    assert "OPENAI_API_KEY" in session.error["message"] and not fake_llm.requests


def failed_with(session) -> dict:
    """The error of the session's failed turn, checked to be the same on the turn, its
    `turn.failed` event and the session."""
    session.refresh_from_db()
    turn = Turn.objects.filter(session=session).order_by("-id").first()
    assert turn.status == "failed" and session.status == "failed", (turn.status, session.status)
    assert Event.objects.get(session=session, turn_id=turn.pk, type="turn.failed").data == {"error": turn.error}
    assert session.error == turn.error
    return turn.error


def test_disabled_provider_fails_with_provider_disabled(fake_llm):
    model = fake(fake_llm, "m-off")
    LlmProvider.objects.filter(pk=model.provider_id).update(status="disabled")
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    run_active_turn(session)
    assert failed_with(session)["code"] == "provider_disabled"
    assert not fake_llm.requests


def test_a_model_deleted_before_its_turn_fails_with_model_not_found(fake_llm):
    model = fake(fake_llm, "m-gone")
    session = make_session()
    post_user(session, "hi", controls={"model_id": str(model.pk)})  # valid when posted
    model_id = model.pk
    model.delete()
    run_active_turn(session)
    error = failed_with(session)
    assert error["code"] == "model_not_found" and str(model_id) in error["message"]
    assert not fake_llm.requests


def test_no_model_anywhere_and_no_default_fails_with_no_default_model(fake_llm, settings):
    settings.EVERRUNS_DEFAULT_MODEL = ""
    LlmModel.objects.update(is_default=False)
    session = make_session()
    post_user(session, "hi")
    run_active_turn(session)
    assert failed_with(session)["code"] == "no_default_model"


def test_a_key_encrypted_with_another_key_fails_with_provider_key_unreadable(fake_llm):
    model = fake(fake_llm, "m-foreign-key")
    foreign = Fernet(Fernet.generate_key()).encrypt(b"sk-from-another-install").decode()
    LlmProvider.objects.filter(pk=model.provider_id).update(api_key_encrypted=foreign)
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    run_active_turn(session)
    error = failed_with(session)
    assert error["code"] == "provider_key_unreadable" and "cannot be decrypted" in error["message"]
    assert not fake_llm.requests


def test_a_stored_key_without_an_encryption_key_fails_with_provider_key_unreadable(fake_llm, settings):
    model = fake(fake_llm, "m-no-secrets")
    LlmProvider.objects.filter(pk=model.provider_id).update(api_key_encrypted=secrets.encrypt("sk-stored-earlier"))
    settings.SECRETS_ENCRYPTION_KEY = ""
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    run_active_turn(session)
    error = failed_with(session)
    assert error["code"] == "provider_key_unreadable" and "SECRETS_ENCRYPTION_KEY" in error["message"]
    assert not fake_llm.requests


def test_stored_key_is_sent_and_never_leaks(fake_llm, caplog):
    key = "sk-leakcheck-5f8a2b9c"
    model = fake(fake_llm, "m-keyed")
    LlmProvider.objects.filter(pk=model.provider_id).update(api_key_encrypted=secrets.encrypt(key))
    fake_llm.reply({"status": 401, "error": "Incorrect API key provided", "echo_key": True})
    session = make_session(model_id=model.pk)
    caplog.set_level(logging.DEBUG)
    post_user(session, "hi")
    run_active_turn(session)
    assert fake_llm.headers[-1]["authorization"] == f"Bearer {key}"
    session.refresh_from_db()
    assert session.error["code"] == "llm_authentication_failed"
    assert "Incorrect API key" not in session.error["message"]  # the provider's text stays in the log
    everything = json.dumps(
        [
            list(Event.objects.filter(session=session).values("data")),
            list(Message.objects.filter(session=session).values("content", "metadata")),
            session.error,
        ],
        default=str,
    )
    assert key not in everything
    assert key not in caplog.text
    assert key not in "".join(r.getMessage() for r in caplog.records)


@pytest.fixture
def console(monkeypatch):
    """What the configured console handler (settings.LOGGING) writes, captured."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    captured = io.StringIO()
    monkeypatch.setattr(handler, "stream", captured)  # not setStream: it flushes the old one, maybe closed
    return captured


def test_a_key_the_process_decrypted_is_redacted_from_log_lines(fake_llm, console):
    key = "sk-logline-7c1d9e0f"
    model = fake(fake_llm, "m-logged")
    # Encrypted elsewhere (the web process, through the API): this process only ever decrypts it.
    token = Fernet(django_settings.SECRETS_ENCRYPTION_KEY).encrypt(key.encode()).decode()
    LlmProvider.objects.filter(pk=model.provider_id).update(api_key_encrypted=token)
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    assert run_active_turn(session).status == "completed"  # the turn decrypted the key
    logger = logging.getLogger("runner.loop")
    logger.warning("provider answered 401 for Authorization: Bearer %s", key)
    try:
        raise RuntimeError(f"request failed with api_key={key}")
    except RuntimeError:
        logger.exception("a call failed")
    logger.warning("a key this process never decrypted: %s", "sk-unrelated-123456")
    written = console.getvalue()
    assert "Authorization: Bearer [redacted]" in written
    assert "api_key=[redacted]" in written and "Traceback" in written
    assert "sk-unrelated-123456" in written  # only known keys are masked
    assert key not in written


def test_reasoning_effort_is_passed_through(fake_llm):
    model = fake(fake_llm, "o3-mini")
    session = make_session(model_id=model.pk)
    post_user(session, "think", controls={"reasoning": {"effort": "low"}})
    run_active_turn(session)
    assert fake_llm.requests[-1]["reasoning_effort"] == "low"


def test_usage_and_cost_are_summed_across_a_tool_turn(fake_llm):

    model = fake(fake_llm, "gpt-4o-mini")  # a priced model name, served by the fake server
    fake_llm.reply(
        {
            "tool_calls": [{"id": "c1", "name": "add", "arguments": {"a": 1, "b": 2}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20},
        },
        {"text": "3", "usage": {"prompt_tokens": 90, "completion_tokens": 12}},
    )
    session = make_session(make_agent(capabilities=["test_math"]), model_id=model.pk)
    post_user(session, "1+2")
    run_active_turn(session)
    price = litellm.model_cost["gpt-4o-mini"]
    costs = [
        n_in * price["input_cost_per_token"] + n_out * price["output_cost_per_token"]
        for n_in, n_out in ((50, 20), (90, 12))
    ]
    calls = [e.data for e in Event.objects.filter(session=session, type="llm.completed").order_by("sequence")]
    assert [c["usage"]["input_tokens"] for c in calls] == [50, 90]
    assert [c["usage"]["output_tokens"] for c in calls] == [20, 12]
    assert all(set(c["usage"]) >= {"cached_tokens", "reasoning_tokens"} for c in calls)
    assert [c["cost_usd"] for c in calls] == pytest.approx(costs)
    assistant = [m for m in messages(session) if m.role == "assistant"]
    assert [m.metadata["usage"]["cost_usd"] for m in assistant] == pytest.approx(costs)
    done = Event.objects.get(session=session, type="turn.completed").data
    assert done["usage"]["input_tokens"] == 140 and done["usage"]["output_tokens"] == 32
    assert done["usage"]["cost_usd"] == pytest.approx(sum(costs))
    session.refresh_from_db()
    assert (session.input_tokens, session.output_tokens) == (140, 32)
    assert session.cost_usd == pytest.approx(sum(costs))


def test_unknown_price_is_null_not_a_crash(fake_llm):
    model = fake(fake_llm, "no-such-priced-model")
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    assert run_active_turn(session).status == "completed"
    assert Event.objects.get(session=session, type="llm.completed").data["cost_usd"] is None


def test_transient_errors_are_retried_then_succeed(fake_llm, fast_retries):
    model = fake(fake_llm, "m-flaky")
    fake_llm.reply({"status": 500, "error": "boom"}, {"status": 429, "error": "slow down"}, {"text": "finally"})
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    assert run_active_turn(session).status == "completed"
    retries = [e.data for e in Event.objects.filter(session=session, type="llm.retrying").order_by("sequence")]
    assert [r["attempt"] for r in retries] == [1, 2]
    assert [r["error"]["code"] for r in retries] == ["llm_provider_error", "llm_rate_limited"]
    assert all(0 <= r["delay_ms"] <= 50 for r in retries)
    assert len(fake_llm.requests) == 3  # the client library did not retry on its own
    assert messages(session)[-1].content[0]["text"] == "finally"


def test_retries_exhausted_fail_the_turn(fake_llm, fast_retries):
    model = fake(fake_llm, "m-down")
    fake_llm.reply(*[{"status": 503, "error": "unavailable"}] * 4)
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    run_active_turn(session)
    session.refresh_from_db()
    assert session.status == "failed" and session.error["code"] == "llm_provider_error"
    assert Event.objects.filter(session=session, type="llm.retrying").count() == 3
    assert len(fake_llm.requests) == 4


@pytest.mark.parametrize(
    "reply,code",
    [
        ({"status": 401, "error": "no"}, "llm_authentication_failed"),
        ({"status": 400, "error": "no"}, "llm_bad_request"),
        ({"status": 403, "error": "this key may not use this model"}, "llm_permission_denied"),
        ({"status": 404, "error": "The model `m` does not exist"}, "llm_model_not_found"),
        (
            {
                "status": 400,
                "error": "This model's maximum context length is 8192 tokens. However, your messages resulted in "
                "9000 tokens.",
                "code": "context_length_exceeded",
            },
            "context_window_exceeded",
        ),
    ],
    ids=["401", "400", "403", "404", "context-window"],
)
def test_permanent_errors_fail_at_once(fake_llm, fast_retries, reply, code):
    model = fake(fake_llm, f"m-{code}")
    fake_llm.reply(reply)
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    run_active_turn(session)
    error = failed_with(session)
    assert error["code"] == code and f"(HTTP {reply['status']}" in error["message"]
    assert reply["error"][:20] not in error["message"]  # the provider's text: in the log, not the event
    assert not Event.objects.filter(session=session, type="llm.retrying").exists() and len(fake_llm.requests) == 1


def test_an_unreachable_provider_is_retried_then_fails_with_llm_connection_error(fast_retries):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    model = make_model(
        provider_type="openai_compatible", model_id="m-unreachable", base_url=f"http://127.0.0.1:{closed_port}/v1"
    )
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    run_active_turn(session)
    assert failed_with(session)["code"] == "llm_connection_error"
    retries = [e.data for e in Event.objects.filter(session=session, type="llm.retrying").order_by("sequence")]
    assert [r["attempt"] for r in retries] == [1, 2, 3]
    assert {r["error"]["code"] for r in retries} == {"llm_connection_error"}


def test_a_retry_waits_at_least_the_providers_retry_after(fake_llm, settings):
    settings.LLM_RETRY_BASE_MS = 10  # our own backoff alone would wait 5-10 ms
    settings.LLM_RETRY_MAX_MS = 5000
    model = fake(fake_llm, "m-busy")
    fake_llm.reply({"status": 429, "error": "slow down", "retry_after": 1}, {"text": "after the wait"})
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    assert run_active_turn(session).status == "completed"
    retry = Event.objects.get(session=session, type="llm.retrying").data
    assert retry["error"]["code"] == "llm_rate_limited" and retry["delay_ms"] >= 1000
    failed_at, retried_at = fake_llm.received_at[-2:]
    assert retried_at - failed_at >= 1.0
    assert messages(session)[-1].content[0]["text"] == "after the wait"


def test_a_call_over_its_timeout_is_retried_then_fails_as_llm_timeout(fake_llm, fast_retries, settings):
    settings.LLM_TIMEOUT_SECONDS = 0.5
    settings.LLM_MAX_RETRIES = 1
    model = fake(fake_llm, "m-slow")
    fake_llm.reply({"delay": 2, "text": "late"}, {"delay": 2, "text": "late"})
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    run_active_turn(session)
    session.refresh_from_db()
    assert session.error["code"] == "llm_timeout"
    assert Event.objects.filter(session=session, type="llm.retrying").count() == 1
