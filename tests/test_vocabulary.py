"""One vocabulary per concept: one date format, one encoding of events and messages, one list of turn error codes."""

import datetime
import re
from pathlib import Path

import pytest
from rest_framework import serializers

from agents.models import Agent, LlmModel, LlmProvider
from everruns.core.dates import rfc3339
from runner.errors import TurnErrorCode
from sessions.fs import files
from sessions.log import append_event, append_message, event_to_dict, message_to_dict
from sessions.models import Event, Message, Session, SessionFile
from sessions.serializers import EventSerializer, MessageSerializer
from tests.factories import make_session

WITH_MICROSECONDS = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
WHOLE_SECOND = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    "stored,shown",
    [(WITH_MICROSECONDS, "2026-01-02T03:04:05.678901Z"), (WHOLE_SECOND, "2026-01-02T03:04:05Z")],
)
def test_every_resource_shows_its_timestamps_in_one_rfc3339_utc_format(api, stored, shown):
    session = make_session()
    message = append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": "hi"}])
    files.create(session.pk, "/notes.txt", content="hello")
    model = LlmModel.objects.get(is_default=True)
    Agent.objects.filter(pk=session.agent_id).update(created_at=stored, updated_at=stored)
    Session.objects.filter(pk=session.pk).update(created_at=stored, updated_at=stored)
    LlmProvider.objects.filter(pk=model.provider_id).update(created_at=stored, updated_at=stored)
    LlmModel.objects.filter(pk=model.pk).update(created_at=stored, updated_at=stored)
    Message.objects.filter(pk=message.pk).update(created_at=stored)
    Event.objects.filter(session_id=session.pk).update(created_at=stored)
    SessionFile.objects.filter(session_id=session.pk).update(created_at=stored, updated_at=stored)
    base = f"/v1/agents/{session.agent_id}/sessions/{session.pk}"
    items = [
        api.get(f"/v1/agents/{session.agent_id}").json(),
        api.get(base).json(),
        api.get(f"/v1/llm-providers/{model.provider_id}").json(),
        api.get(f"/v1/llm-models/{model.pk}").json(),
        *api.get(f"{base}/messages").json()["items"],
        *api.get(f"{base}/events").json()["items"],
        api.get(f"{base}/fs/notes.txt").json(),
    ]
    stamps = [item[key] for item in items for key in ("created_at", "updated_at") if key in item]
    assert len(stamps) == 5 * 2 + 1 + 1  # five resources with both, one message, one event
    assert stamps == [shown] * len(stamps)


@pytest.mark.parametrize(
    "value",
    [
        WITH_MICROSECONDS,
        WHOLE_SECOND,
        datetime.datetime(2026, 6, 1, 23, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
    ],
)
def test_the_dict_payloads_write_dates_as_drf_does(value):
    assert rfc3339(value) == serializers.DateTimeField().to_representation(value)
    assert rfc3339(value).endswith("Z")


def test_rest_items_are_the_log_encoding_that_sse_sends(api):
    """The SSE stream sends event_to_dict (sessions.streams.stream and the live publish); the REST lists must be
    the same objects, and the serializers must document exactly those keys."""
    session = make_session()
    message = append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": "hi"}])
    append_event(session_id=session.pk, type="turn.failed", data={"error": {"code": "llm_error", "message": "x"}})
    base = f"/v1/agents/{session.agent_id}/sessions/{session.pk}"
    events = list(Event.objects.filter(session_id=session.pk).order_by("sequence"))
    assert api.get(f"{base}/events").json()["items"] == [event_to_dict(e) for e in events]
    assert api.get(f"{base}/messages").json()["items"] == [message_to_dict(message)]
    assert events[0].data == {"message": message_to_dict(message)}  # message.user carries the same encoding
    assert list(EventSerializer().fields) == list(event_to_dict(events[0]))
    assert list(MessageSerializer().fields) == list(message_to_dict(message))


def documented_turn_error_codes() -> list[str]:
    """The codes in docs/decisions.md's bullet "Error codes on failed turns: ..." (its line and the indented ones
    after)."""
    lines = (Path(__file__).resolve().parents[1] / "docs" / "decisions.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "Error codes on failed turns:" in line)
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return re.findall(r"`([a-z_]+)`", " ".join(lines[start:end]))


def test_the_docs_list_every_turn_error_code_and_no_other():
    listed = documented_turn_error_codes()
    assert len(listed) == len(set(listed))
    assert set(listed) == {code.value for code in TurnErrorCode}
