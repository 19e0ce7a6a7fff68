"""everruns/core/prepared.py: the written-out SQL runs as prepared statements on PostgreSQL."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from everruns.core import prepared, rows
from sessions.models import Session
from tests.factories import make_session

pytestmark = pytest.mark.django_db


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _read(session):
    return rows.fetch(Session, '"id" = %s AND "title" = %s', [rows.prep(Session, "id", session.pk), session.title])


def test_a_written_out_read_is_prepared_once_and_reads_what_the_orm_reads():
    session = make_session(title="prepared")
    first, again = _read(session), _read(session)
    assert [s.pk for s in first] == [s.pk for s in again] == [session.pk]
    ours = [s for s in _prepared_statements() if '"title" = $2' in s]
    assert len(ours) == 1 and ours[0].startswith("PREPARE evr_")


def test_a_statement_that_cannot_be_prepared_runs_as_written_and_leaves_the_transaction_usable():
    session = make_session(title="t")
    with transaction.atomic():
        with connection.cursor() as cursor:
            prepared.execute(cursor, "SELECT %s IS NULL", ["x"])  # PostgreSQL cannot type $1 here
            assert cursor.fetchone() == (False,)
        assert [s.pk for s in _read(session)] == [session.pk]  # the transaction is not aborted
    assert prepared._statements[connection.connection]["SELECT %s IS NULL"] == prepared.UNPREPARABLE


def test_with_the_query_log_on_the_statements_are_logged_as_written():
    session = make_session(title="logged")
    with CaptureQueriesContext(connection) as queries:
        _read(session)
    assert len(queries) == 1 and queries[0]["sql"].startswith("SELECT ")


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_again():
    session = make_session(title="reconnect")
    _read(session)
    connection.close()
    assert [s.pk for s in _read(session)] == [session.pk]
    assert any('"title" = $2' in s for s in _prepared_statements())


def test_switched_off_nothing_is_prepared(settings):
    settings.DB_PREPARED_STATEMENTS = False
    session = make_session(title="as written")
    where, params = '"id" = %s AND "status" = %s', [rows.prep(Session, "id", session.pk), session.status]
    assert [s.pk for s in rows.fetch(Session, where, params)] == [session.pk]
    assert not [s for s in _prepared_statements() if '"status" = $2' in s]
    settings.DB_PREPARED_STATEMENTS = True
    rows.fetch(Session, where, params)
    assert [s for s in _prepared_statements() if '"status" = $2' in s]  # the same read, switched on
