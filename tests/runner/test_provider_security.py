"""Provider keys and base URLs at turn time, through litellm's real HTTP path to the fake server: a key goes
only where it was given for, base URLs are re-checked before each call, settings are clamped, and keys from
the environment are redacted like stored ones."""

import io
import json
import logging
from pathlib import Path

import litellm
import pytest
from litellm import _logging as litellm_logging
from rest_framework.test import APIClient

from agents import provider_types, secrets
from agents.models import LlmModel, LlmProvider
from runner import llm
from runner.resolution import NO_KEY, ModelUnavailable, resolve
from sessions.models import Event, Message
from tests.factories import make_model, make_session
from tests.fake_llm_server import FakeLLM
from tests.rebinding import rebinding_resolver
from tests.runner.helpers import post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx")

KEY = "sk-stored-for-the-old-endpoint-1f3a"
# Not shaped like a vendor key, so that litellm's own pattern-based redaction cannot be what hides it.
ENV_KEY = "envkey-operators-own-9c41d7e2b8"


def patch_provider(provider_id, body: dict) -> dict:
    response = APIClient().patch(f"/v1/llm-providers/{provider_id}", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def failed_turn(session) -> dict:
    run_active_turn(session)
    session.refresh_from_db()
    assert session.status == "failed"
    return session.error


def test_after_a_patch_to_a_new_base_url_the_stored_key_is_not_sent_there(fake_llm):
    model = make_model(provider_type="openai_compatible", model_id="fake-model", base_url="http://localhost:9/v1")
    LlmProvider.objects.filter(pk=model.provider_id).update(api_key_encrypted=secrets.encrypt(KEY))
    assert patch_provider(model.provider_id, {"base_url": fake_llm.base_url})["api_key_set"] is False
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    assert run_active_turn(session).status == "completed"
    assert fake_llm.headers[-1]["authorization"] == f"Bearer {NO_KEY}"
    assert KEY not in json.dumps(fake_llm.headers)


@pytest.mark.parametrize(
    "provider_type,env,model_id",
    [("openai", "OPENAI_API_KEY", "gpt-4o-mini"), ("anthropic", "ANTHROPIC_API_KEY", "claude-3-5-haiku-latest")],
)
def test_an_environment_key_is_not_sent_to_a_base_url_a_user_chose(fake_llm, monkeypatch, provider_type, env, model_id):
    monkeypatch.setenv(env, ENV_KEY)
    model = LlmModel.objects.get(provider__provider_type=provider_type, model_id=model_id)
    patch_provider(model.provider_id, {"base_url": fake_llm.base_url})
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    error = failed_turn(session)
    assert error["code"] == "provider_key_missing" and env in error["message"]
    assert not fake_llm.requests and ENV_KEY not in json.dumps(fake_llm.headers)


@pytest.mark.parametrize("base_url", [None, "https://api.openai.com/v1", "https://API.openai.com:443/"])
def test_an_environment_key_is_used_with_the_official_endpoint(monkeypatch, base_url):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    model = LlmModel.objects.get(provider__provider_type="openai", model_id="gpt-4o-mini")
    LlmProvider.objects.filter(pk=model.provider_id).update(base_url=base_url)
    resolved = resolve(session_model_id=model.pk)
    assert resolved.api_key == ENV_KEY and resolved.api_base == base_url


def test_a_custom_base_url_without_a_stored_key_never_takes_one_from_the_environment(monkeypatch):
    """A type without a key variable of ours (litellm may still look up one of its own) gets the placeholder."""
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", ENV_KEY)
    model = make_model(provider_type="hosted_vllm", model_id="m", base_url="http://localhost:9/v1")
    assert resolve(session_model_id=model.pk).api_key == NO_KEY


def test_the_base_url_is_checked_again_before_the_call(fake_llm, settings):
    """A row saved before the rule (or a name whose DNS answer has changed since) is refused at call time."""
    model = make_model(provider_type="openai_compatible", model_id="fake-model", base_url=fake_llm.base_url)
    settings.LLM_ALLOWED_HOSTS = []
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    error = failed_turn(session)
    assert error["code"] == "llm_connection_error" and "LLM_ALLOWED_HOSTS" in error["message"]
    assert not fake_llm.requests
    settings.LLM_ALLOWED_HOSTS = [f"127.0.0.1:{fake_llm.port}"]
    post_user(session, "again")
    assert run_active_turn(session).status == "completed" and len(fake_llm.requests) == 1


def test_a_local_default_endpoint_is_checked_before_the_call_too(settings):
    model = make_model(provider_type="ollama", model_id="llama3")
    settings.LLM_ALLOWED_HOSTS = []
    with pytest.raises(ModelUnavailable) as refused:
        resolve(session_model_id=model.pk)
    assert refused.value.code == "llm_connection_error" and "http://localhost:11434" in refused.value.message
    settings.LLM_ALLOWED_HOSTS = ["localhost"]
    assert resolve(session_model_id=model.pk).api_base is None  # litellm's default, now allowed


@pytest.mark.parametrize("provider_type", sorted(provider_types.LOCAL_DEFAULT_ENDPOINTS))
def test_local_default_endpoints_match_litellms(monkeypatch, provider_type):
    variable, default = provider_types.LOCAL_DEFAULT_ENDPOINTS[provider_type]
    monkeypatch.delenv(variable, raising=False)
    reported = litellm.get_llm_provider(model=f"{provider_type}/m")[3]
    assert reported in (None, default)  # None: litellm settles it later, in the type's own module
    root = Path(litellm.__file__).parent
    sources = [root / "main.py", *(root / "llms" / provider_type.removesuffix("_chat")).rglob("*.py")]
    assert any(f'get_secret_str("{variable}") or "{default}"' in f.read_text() for f in sources)


def test_settings_saved_before_the_bounds_are_clamped_at_call_time():
    model = make_model(
        model_id="llmsim-unbounded",
        settings={"timeout": 10**9, "latency_ms": 10**12, "tokens_per_second": 1e-9, "other": "kept"},
    )
    assert resolve(session_model_id=model.pk).settings == {
        "timeout": 600,
        "latency_ms": 600_000,
        "tokens_per_second": 1,
        "other": "kept",
    }
    LlmProvider.objects.filter(pk=model.provider_id).update(settings={"timeout": "soon", "latency_ms": -1})
    assert resolve(session_model_id=model.pk).settings == {}


@pytest.fixture
def root_output():
    """What the root logger's own handler (the one settings.LOGGING configures) writes."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, secrets.RedactSecretsFilter) for f in getattr(h, "filters", []))
    ]
    assert handlers
    buffer = io.StringIO()
    previous = [h.setStream(buffer) for h in handlers]
    yield buffer
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)


def test_an_environment_key_echoed_by_the_provider_is_redacted_everywhere(
    fake_llm, settings, monkeypatch, caplog, root_output
):
    settings.EVERRUNS_DEFAULT_MODEL = "openai/env-model"
    monkeypatch.setenv("OPENAI_API_BASE", fake_llm.base_url)  # the operator's own choice of endpoint
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    fake_llm.reply({"status": 401, "error": "Incorrect API key provided", "echo_key": True})
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="LiteLLM")
    session = make_session()
    post_user(session, "hi")
    error = failed_turn(session)
    assert fake_llm.headers[-1]["authorization"] == f"Bearer {ENV_KEY}"
    assert error == {
        "code": "llm_authentication_failed",
        "message": "The LLM provider rejected the API key (HTTP 401, authentication_error)",
    }
    everything = json.dumps(
        [
            list(Event.objects.filter(session=session).values("data")),
            list(Message.objects.filter(session=session).values("content", "metadata")),
            error,
        ],
        default=str,
    )
    assert ENV_KEY not in everything
    assert ENV_KEY not in caplog.text and ENV_KEY not in root_output.getvalue()


LITELLM_LOGGERS = ["LiteLLM", "LiteLLM Router", "LiteLLM Proxy"]


@pytest.fixture
def litellm_handler():
    """litellm's own handler (to stdout/stderr) on its loggers, as `import litellm` leaves them in a worker. (In
    the suite, a test module that runs django.setup() again re-applies settings.LOGGING, which takes the
    handler off "LiteLLM": put it back for the test.)"""
    llm.warm_up()
    missing = [name for name in LITELLM_LOGGERS if litellm_logging.handler not in logging.getLogger(name).handlers]
    for name in missing:
        logging.getLogger(name).addHandler(litellm_logging.handler)
    yield
    for name in missing:
        logging.getLogger(name).removeHandler(litellm_logging.handler)


@pytest.mark.parametrize("logger_name", LITELLM_LOGGERS)
def test_records_on_litellms_loggers_are_redacted_in_every_handler(
    monkeypatch, caplog, capsys, root_output, litellm_handler, logger_name
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_KEY)
    secrets.remember_environment_keys()
    caplog.set_level(logging.WARNING, logger=logger_name)
    logging.getLogger(logger_name).warning("the provider answered: %s", ENV_KEY)
    try:
        raise RuntimeError(f"quoting {ENV_KEY}")
    except RuntimeError:
        logging.getLogger(logger_name).exception("call failed")
    litellm_output = capsys.readouterr()
    assert "the provider answered: [redacted]" in caplog.text
    for text in (caplog.text, root_output.getvalue(), litellm_output.out, litellm_output.err):
        assert ENV_KEY not in text
    assert "[redacted]" in litellm_output.err + litellm_output.out


SECRET = "internal-secret-7c2e91d4"


@pytest.fixture
def internal_server():
    """A server on an allowed host (loopback is in the suite's LLM_ALLOWED_HOSTS) that a provider may point
    at: it answers everything with a page holding a secret."""
    server = FakeLLM(fixed={"status": 500, "html": f"<html><body>{SECRET}</body></html>"}).start()
    yield server
    server.stop()


def everything_the_client_reads(session) -> str:
    return json.dumps(
        [
            list(Event.objects.filter(session=session).values("type", "data")),
            list(Message.objects.filter(session=session).values("content", "metadata")),
            session.error,
        ],
        default=str,
    )


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_providers_redirect_is_not_followed(fake_llm, internal_server, status):
    fake_llm.reply({"status": status, "redirect": f"{internal_server.base_url}/chat/completions"})
    model = make_model(provider_type="openai_compatible", model_id="fake-model", base_url=fake_llm.base_url)
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    error = failed_turn(session)
    assert error["code"] == "llm_connection_error" and f"HTTP {status} with a redirect" in error["message"]
    assert len(fake_llm.requests) == 1  # not retried: a redirect stays a redirect
    assert internal_server.requests == []
    assert SECRET not in everything_the_client_reads(session)


@pytest.fixture
def fast_retries(settings):
    settings.LLM_RETRY_BASE_MS, settings.LLM_RETRY_MAX_MS, settings.LLM_MAX_RETRIES = 1, 5, 1


def test_a_providers_error_page_is_not_shown_to_the_client(fake_llm, fast_retries):
    page = {"status": 502, "html": f"<html><pre>Traceback ... {SECRET}</pre></html>"}
    fake_llm.reply(page, page)
    model = make_model(provider_type="openai_compatible", model_id="fake-model", base_url=fake_llm.base_url)
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    error = failed_turn(session)
    assert error == {"code": "llm_provider_error", "message": "The LLM provider failed (HTTP 502)"}
    assert Event.objects.filter(session=session, type="llm.retrying").count() == 1
    assert SECRET not in everything_the_client_reads(session)


def test_a_providers_json_error_shows_its_type_and_code_but_not_its_text(fake_llm):
    fake_llm.reply({"status": 400, "error": f"bad input near {SECRET}", "code": "invalid_value"})
    model = make_model(provider_type="openai_compatible", model_id="fake-model", base_url=fake_llm.base_url)
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    error = failed_turn(session)
    assert error == {
        "code": "llm_bad_request",
        "message": "The LLM provider refused the request (HTTP 400, invalid_request_error, invalid_value)",
    }
    assert SECRET not in everything_the_client_reads(session)


def test_a_name_that_turns_to_loopback_after_the_check_is_refused_at_connect(internal_server, monkeypatch, settings):
    """DNS rebinding: the name answers a public address when the provider is saved and checked, and loopback
    after. The connection itself is checked (litellm's own lookup is never used), so it reaches nothing."""
    answers = rebinding_resolver(monkeypatch, "rebind.test")
    settings.LLM_ALLOWED_HOSTS = []  # the name is checked (loopback is not allowed here)
    model = make_model(
        provider_type="openai_compatible", model_id="m", base_url=f"http://rebind.test:{internal_server.port}/v1"
    )
    session = make_session(model_id=model.pk)
    post_user(session, "hi")
    error = failed_turn(session)
    assert answers["rebind.test"] >= 2  # checked before the call, and again at connect
    assert error["code"] == "llm_connection_error" and "127.0.0.1 is not a public address" in error["message"]
    assert internal_server.requests == []
    assert SECRET not in everything_the_client_reads(session)
