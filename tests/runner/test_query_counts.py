"""Round trips are the cost of a turn: the number of SQL statements per step is pinned here, so a
change that adds one shows up as a failing test (raise the number only on purpose)."""

import threading
import traceback

import pytest
from django.db import connection

from runner.runtime import runtime
from sessions.webhooks.models import WebhookDelivery
from sessions.webhooks.services import webhook_create
from tests.runner.helpers import new_session, post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx")


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        # The heartbeat's lease renewals depend on timing, not on the turn's steps: not counted.
        if not any(frame.name == "leases_renew" for frame in traceback.extract_stack()):
            with self.lock:
                self.statements.append(sql)
        return execute(sql, params, many, context)


@pytest.fixture
def count_turn_queries():
    """Counts the statements the runtime's database threads send while the test runs."""
    counter = Counter()
    runtime().on_each_db_thread(lambda: connection.execute_wrappers.append(counter))
    yield counter
    runtime().on_each_db_thread(lambda: connection.execute_wrappers.remove(counter))


def test_a_plain_turn_takes_a_fixed_number_of_statements(count_turn_queries):
    session = new_session()
    post_user(session, "hello")
    run_active_turn(session)
    assert len(count_turn_queries.statements) == 22, "\n".join(count_turn_queries.statements)


def test_a_two_call_tool_turn_takes_a_fixed_number_of_statements(count_turn_queries):
    session = new_session(capabilities=["test_math"])
    post_user(session, "What is 7 + 8?")
    run_active_turn(session)
    assert len(count_turn_queries.statements) == 40, "\n".join(count_turn_queries.statements)


def test_webhooks_add_no_statement_to_a_turn(count_turn_queries):
    """The outbox rows are written by the event's own statement (sessions.webhooks.outbox)."""
    webhook_create(url="http://127.0.0.1:9/hook", events=["turn.started", "llm.completed", "turn.completed"])
    session = new_session()
    post_user(session, "hello")
    run_active_turn(session)
    assert len(count_turn_queries.statements) == 22, "\n".join(count_turn_queries.statements)
    assert WebhookDelivery.objects.filter(session_id=session.pk).count() == 3
