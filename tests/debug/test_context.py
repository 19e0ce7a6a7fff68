"""The context view is exactly what the loop then sends: compared with the request a real turn makes
(litellm's openai/ path to the fake OpenAI-compatible server)."""

import json

import pytest

from everruns.debug import context
from runner.compaction import prompt
from sessions.models import Event, Message, Session
from tests.factories import make_agent, make_model, make_session
from tests.runner.helpers import long_message, post_user, run_active_turn

pytestmark = pytest.mark.usefixtures("seeded_tx", "runtime_connections")


def next_call_of(session):
    return context.next_call(Session.objects.select_related("agent").get(pk=session.pk))


def test_the_next_call_is_what_the_turn_sends(fake_llm, fake_model):
    agent = make_agent(capabilities=["current_time", "test_math"], system_prompt="You are exact.")
    session = make_session(agent, model_id=fake_model.pk)
    fake_llm.reply(
        {"text": "Adding.", "tool_calls": [{"id": "call_1", "name": "add", "arguments": {"a": 2, "b": 3}}]},
        {"text": "2 + 3 = 5."},
        {"text": "You are welcome."},
    )
    post_user(session, "What is 2 + 3?")
    run_active_turn(session)
    post_user(session, "Thanks!")

    call = next_call_of(session)
    run_active_turn(session)
    sent = fake_llm.requests[-1]
    assert call.messages == sent["messages"]
    assert call.tools == sent["tools"]
    assert call.model == "fake-model (openai/fake-model)" and call.model_error is None
    system = call.messages[0]
    assert system["role"] == "system" and system["content"] == call.system_prompt
    assert call.system_prompt.endswith("You are exact.") and "add" in call.system_prompt  # capability prompt first
    assert [m["role"] for m in call.messages] == ["system", "user", "assistant", "tool", "assistant", "user"]


def test_the_estimate_is_labelled_and_the_last_real_count_is_shown(fake_llm, fake_model):
    session = make_session(make_agent(), model_id=fake_model.pk)
    fake_llm.reply({"text": "Hi.", "usage": {"prompt_tokens": 77, "completion_tokens": 2}})
    assert next_call_of(session).last_input_tokens is None
    post_user(session, "Hello")
    run_active_turn(session)
    call = next_call_of(session)
    assert call.last_input_tokens == 77
    assert call.estimated_tokens > 0


def test_a_model_that_cannot_be_used_is_shown_as_the_turn_would_fail(fake_model):
    fake_model.status = "disabled"
    fake_model.save()
    call = next_call_of(make_session(make_agent(), model_id=fake_model.pk))
    assert call.model is None and call.model_error.startswith("model_disabled:")


def test_after_a_compaction_the_view_shows_the_summary_in_place_of_what_it_replaced(client, settings):
    settings.AUTH_MODE = "none"
    model = make_model(model_id="llmsim-2k-view", model_settings={"context_window": 2000})
    session = make_session(make_agent(), model_id=model.pk)
    for i in range(1, 6):
        post_user(session, long_message(i))
        run_active_turn(session)
    event = Event.objects.filter(session=session, type="context.compacted").last()
    call = next_call_of(session)
    assert call.compaction == event.data and call.context_window == 2000
    assert call.messages[1] == prompt.summary_message(event.data["summary"])
    replaced = Message.objects.filter(session=session, sequence__lte=event.data["through_sequence"], role="user")
    shown = json.dumps(call.messages)
    assert not any(json.dumps(m.content[0]["text"]) in shown for m in replaced)
    page = client.get(f"/debug/agents/{session.agent_id}/sessions/{session.pk}/context/").content.decode()
    assert f'<b class="tokens-before">{event.data["tokens_before"]}</b>' in page
    assert f'<b class="tokens-after">{event.data["tokens_after"]}</b>' in page
    assert f'data-through-sequence="{event.data["through_sequence"]}"' in page
