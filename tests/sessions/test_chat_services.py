"""What a chat front-end's request stores, with the real services: each message once however often the
history comes, sessions for AG-UI threads, approvals answered in the history."""

import pytest

from everruns.errors import ValidationError
from sessions.chat_services import chat_post, thread_session
from sessions.models import Message, Session
from tests.factories import make_agent, make_session

pytestmark = pytest.mark.usefixtures("seeded")


def user(id: str, text: str) -> dict:
    return {"id": id, "role": "user", "content": [{"type": "text", "text": text}]}


def test_a_thread_names_one_session_of_its_agent_made_on_first_use():
    agent, other = make_agent(), make_agent()
    first = thread_session(agent=agent, thread_id="conversation-1")
    assert thread_session(agent=agent, thread_id="conversation-1") == first
    assert first.external_id == "conversation-1"
    assert thread_session(agent=other, thread_id="conversation-1") != first
    assert thread_session(agent=agent, thread_id=str(first.pk)) == first  # a session id names that session
    assert Session.objects.filter(agent=agent).count() == 1


def test_the_whole_history_again_stores_nothing_twice():
    session = make_session()
    start, turn_id = chat_post(session=session, messages=[user("a", "one")], approvals=[])
    assert start == 0 and turn_id is not None
    assert Message.objects.filter(session=session).count() == 1
    again = chat_post(session=session, messages=[user("a", "one")], approvals=[])
    assert Message.objects.filter(session=session).count() == 1
    assert again[1] == turn_id  # the turn still runs (no worker here): the run is its rest
    chat_post(session=session, messages=[user("a", "one"), user("b", "two")], approvals=[])
    stored = Message.objects.filter(session=session).order_by("sequence")
    assert [m.metadata["client_message_id"] for m in stored] == ["a", "b"]


def test_only_messages_after_the_last_one_the_session_has_are_new():
    session = make_session()
    chat_post(session=session, messages=[user("a", "one")], approvals=[])
    ours = str(Message.objects.get(session=session).pk)
    history = [
        user("x", "old, not ours"),
        {"id": ours, "role": "user"},
        {"id": "m", "role": "assistant"},
        user("c", "new"),
    ]
    chat_post(session=session, messages=history, approvals=[])
    texts = [m.content[0]["text"] for m in Message.objects.filter(session=session).order_by("sequence")]
    assert texts == ["one", "new"]


def test_a_message_the_session_has_is_not_rewritten_by_a_client_that_changed_it():
    session = make_session()
    chat_post(session=session, messages=[user("a", "one")], approvals=[])
    chat_post(session=session, messages=[user("a", "changed")], approvals=[])
    assert [m.content[0]["text"] for m in Message.objects.filter(session=session)] == ["one"]


def test_nothing_new_and_nothing_running_runs_nothing():
    session = make_session()
    assert chat_post(session=session, messages=[{"id": "s", "role": "system"}], approvals=[]) == (None, None)


def test_an_empty_user_message_is_a_validation_error_and_stores_nothing():
    session = make_session()
    with pytest.raises(ValidationError):
        chat_post(session=session, messages=[user("a", "  ")], approvals=[])
    assert not Message.objects.filter(session=session).exists()
