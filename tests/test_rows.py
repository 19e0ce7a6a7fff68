"""everruns/core/rows.py: written-out reads give the instances the ORM would."""

from datetime import timedelta

import pytest
from django.db.models.functions import Now

from everruns.core import rows
from sessions.models import Message, Session, Turn
from sessions.selectors import session_get
from tests.factories import make_session

pytestmark = pytest.mark.django_db


def test_a_fetched_row_equals_the_orm_instance_field_by_field():
    session = make_session(title="t", tags=["a", "b"], limits={"max_tokens": 5})
    (fetched,) = rows.fetch(Session, '"id" = %s', [rows.prep(Session, "id", session.pk)])
    stored = Session.objects.get(pk=session.pk)
    for field in Session._meta.concrete_fields:
        assert getattr(fetched, field.attname) == getattr(stored, field.attname), field.name
    assert fetched.tags == ["a", "b"] and fetched.limits == {"max_tokens": 5}  # JSON comes back decoded


def test_only_the_named_fields_are_read_and_the_rest_load_on_use(django_assert_num_queries):
    session = make_session(title="later")
    with django_assert_num_queries(1):
        fetched = rows.fetch_one(Session, '"id" = %s', [rows.prep(Session, "id", session.pk)], fields=("status",))
        assert fetched.status == "pending"
    assert fetched.get_deferred_fields() >= {"title"}
    with django_assert_num_queries(1):
        assert fetched.title == "later"


def test_the_tail_orders_and_limits_and_none_matches_is_none():
    session = make_session()
    for n in range(3):
        Message.objects.create(session=session, sequence=n + 1, role="user", content=[{"type": "text", "text": str(n)}])
    where, params = '"session_id" = %s', [rows.prep(Message, "session", session.pk)]
    assert [m.sequence for m in rows.fetch(Message, where, params, tail='ORDER BY "sequence" DESC LIMIT 2')] == [3, 2]
    assert rows.fetch_one(Turn, '"session_id" = %s', params) is None


def test_session_get_is_scoped_to_its_agent():
    session = make_session()
    assert session_get(agent_id=session.agent_id, session_id=session.pk) == session
    other = make_session()
    with pytest.raises(Exception, match="Session not found"):
        session_get(agent_id=other.agent_id, session_id=session.pk)


def test_a_related_row_comes_in_the_same_query(django_assert_num_queries):
    session = make_session()
    table = Session._meta.db_table
    with django_assert_num_queries(1):
        fetched = rows.fetch_one(
            Session, f'"{table}"."id" = %s', [rows.prep(Session, "id", session.pk)], related="agent"
        )
        assert fetched.agent.pk == session.agent_id and fetched.agent.name == session.agent.name


def test_a_missing_nullable_related_row_is_none():
    session = make_session()
    table = Session._meta.db_table
    fetched = rows.fetch_one(Session, f'"{table}"."id" = %s', [rows.prep(Session, "id", session.pk)], related="model")
    assert fetched.model_id is None and fetched.model is None


def test_an_inserted_row_reads_back_as_the_orm_would_have_stored_it(django_assert_num_queries):
    agent = make_session().agent
    with django_assert_num_queries(1):
        session = rows.insert(Session(agent=agent, title="t", tags=["x"], limits={"max_tokens": 3}))
    stored = Session.objects.get(pk=session.pk)
    assert not session._state.adding and stored.created_at == session.created_at and stored.updated_at
    assert (stored.title, stored.tags, stored.limits, stored.status) == ("t", ["x"], {"max_tokens": 3}, "pending")


def test_an_expression_value_is_computed_by_the_database():
    session = make_session()
    turn = rows.insert(Turn(session=session, input_message_ids=["m"], lease_expires_at=Now() + timedelta(seconds=60)))
    stored = Turn.objects.annotate(now=Now()).get(pk=turn.pk)
    assert timedelta(seconds=55) < stored.lease_expires_at - stored.now <= timedelta(seconds=60)
    assert stored.input_message_ids == ["m"] and stored.status == "queued"


def test_by_pk_reads_one_row_by_its_key_and_update_writes_named_fields():
    session = make_session()
    assert rows.by_pk(Session, session.pk, related="agent").agent_id == session.agent_id
    assert rows.by_pk(Turn, session.pk) is None
    turn = Turn.objects.create(session=session, input_message_ids=[])
    assert rows.update(Session, session.pk, status="running", active_turn=turn) == 1
    stored = Session.objects.get(pk=session.pk)
    assert (stored.status, stored.active_turn_id) == ("running", turn.pk)
    assert rows.update(Session, turn.pk, status="failed") == 0  # no such session
