"""A worker SIGKILLed while an MCP tool runs: the call is not sent again unless the server marks the tool
idempotent (`idempotentHint`), then it is sent once more; either way the turn ends once, on another worker."""

import pytest
from django.conf import settings

from agents.mcp import services as mcp_services
from everruns.celery import RUN_TURN_TASK
from everruns.celery import app as celery_app
from runner.loop import INTERRUPTED_TOOL_ERROR
from sessions.models import Event, Message, Session, Turn
from tests import processes
from tests.conftest import wait_for
from tests.factories import make_agent, make_session
from tests.runner.helpers import post_user

pytestmark = [pytest.mark.e2e, pytest.mark.fault]
FAULT_QUEUE = f"mcp-faults-{settings.RUN_ID}"
WORKER_ENV = {"CELERY_QUEUE": FAULT_QUEUE, "TURN_LEASE_SECONDS": 3, "TURN_SWEEP_SECONDS": 1}


@pytest.fixture
def mcp_http(log_dir):
    server = processes.McpTestServer(log_dir)
    yield server
    server.kill()


def kill_mid_call(log_dir, server: processes.McpTestServer, tool: str) -> Session:
    mcp_services.server_create(name="t", url=server.url, default_policy="auto")
    session = make_session(make_agent(capabilities=["mcp:t"]))
    post_user(session, f'call mcp__t__{tool} {{"seconds": 3}}')
    turn = Turn.objects.get(session=session)
    first = processes.start_worker(log_dir, name=f"mcp-doomed-{tool}", **WORKER_ENV)
    second = None
    try:
        celery_app.send_task(RUN_TURN_TASK, args=[str(turn.pk)], queue=FAULT_QUEUE)
        wait_for(lambda: server.seen("call", tool), 30, message="the call to reach the server")
        first.kill()  # SIGKILL, mid MCP call
        second = processes.start_worker(log_dir, name=f"mcp-rescuer-{tool}", **WORKER_ENV)
        wait_for(lambda: Session.objects.get(pk=session.pk).status == "pending", 60, message="turn taken over")
    finally:
        first.kill()
        if second:
            second.kill()
    turn.refresh_from_db()
    assert turn.status == "completed"
    types = list(Event.objects.filter(session=session).order_by("sequence").values_list("type", flat=True))
    assert types.count("turn.started") == 1 and types.count("turn.completed") == 1
    return session


def tool_results(session: Session) -> list[dict]:
    return [p for m in Message.objects.filter(session=session, role="tool_result") for p in m.content]


@pytest.mark.usefixtures("seeded_tx")
def test_a_non_idempotent_mcp_call_is_not_sent_again_after_a_crash(log_dir, mcp_http):
    session = kill_mid_call(log_dir, mcp_http, "slow")
    assert len(mcp_http.seen("call", "slow")) == 1
    (result,) = tool_results(session)
    assert result["error"] == INTERRUPTED_TOOL_ERROR


@pytest.mark.usefixtures("seeded_tx")
def test_an_idempotent_mcp_call_is_sent_once_more_after_a_crash(log_dir, mcp_http):
    session = kill_mid_call(log_dir, mcp_http, "slow_idempotent")
    calls = mcp_http.seen("call", "slow_idempotent")
    assert len(calls) == 2
    assert calls[0]["meta"]["everruns/tool_call_id"] == calls[1]["meta"]["everruns/tool_call_id"]  # the same call
    (result,) = tool_results(session)
    assert result["error"] is None and "slept 3 s" in str(result["result"])
