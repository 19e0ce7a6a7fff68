"""`everruns` against the Procfile shape: a web process that requires API keys and a Celery worker, on
PostgreSQL and Redis. The key comes from EVERRUNS_API_KEY, --api-key or the config file."""

import json

import pytest

from everruns.api.keys import api_key_create
from tests import processes
from tests.cli.conftest import Cli, of_type
from tests.factories import make_model

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def secured_web(django_db_setup, log_dir):
    proc, url = processes.start_web(log_dir, **processes.WEB_ENV, AUTH_MODE="api_key")
    yield url
    proc.stop()


@pytest.fixture
def key(seeded_tx, worker, secured_web) -> str:
    return api_key_create(name="cli", scope="admin")[1]


def test_without_a_key_the_api_s_401_message_is_the_one_line(secured_web, key, cli_home):
    done = Cli(secured_web, cli_home).run("agents", "list")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_tool_turn_with_the_key_from_the_environment(secured_web, key, cli_home):
    cli = Cli(secured_web, cli_home, api_key=key)
    agent = cli.json("agents", "create", "--name", "Calc", "--system-prompt", "You add.", "--capability", "test_math")
    done = cli.run("chat", agent["id"], "What is 7 + 8?", "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert of_type(events, "tool.completed")[0]["data"]["result"] == {"result": 15}
    assert "15" in of_type(events, "message.assistant")[-1]["data"]["message"]["content"][0]["text"]
    assert of_type(events, "message.delta")  # tokens streamed from the worker, through Redis, to this stream


def test_the_key_and_url_from_the_config_file_or_the_flags(secured_web, key, cli_home, tmp_path):
    bare = Cli("http://127.0.0.1:9", cli_home)  # the environment points nowhere useful
    del bare.env["EVERRUNS_URL"]
    assert bare.run("config", "set", "url", secured_web).returncode == 0
    assert bare.run("config", "set", "api_key", key).returncode == 0
    assert (cli_home / "everruns" / "config.toml").stat().st_mode & 0o077 == 0  # it holds a key: owner only
    shown = bare.json("config", "show")
    assert shown["url"] == secured_web and key not in json.dumps(shown)
    assert bare.json("models", "list")["total"] >= 1
    flags = Cli("http://127.0.0.1:9", tmp_path / "empty")
    assert flags.run("providers", "list", "--url", secured_web, "--api-key", key).returncode == 0
    assert flags.run("providers", "list", "--url", secured_web).returncode == 1


def test_ctrl_c_cancels_a_turn_running_on_a_separate_worker(secured_web, key, cli_home):
    cli = Cli(secured_web, cli_home, api_key=key)
    make_model(model_id="llmsim-slow", settings={"latency_ms": 60_000})
    agent = cli.json("agents", "create", "--name", "Slow", "--system-prompt", "x", "--model", "llmsim-slow")
    chat = cli.start("chat", agent["id"], "Hello", "--json")
    chat.wait_for_event(lambda e: e["type"] == "llm.started")
    assert chat.interrupt() == 130
    session = cli.json("sessions", "list", agent["id"])["items"][0]
    assert session["status"] == "pending"
    assert of_type(chat.events(), "turn.cancelled")
