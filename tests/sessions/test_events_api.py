from sessions.log import append_event
from tests.factories import make_session


def events_url(session):
    return f"/v1/agents/{session.agent_id}/sessions/{session.pk}/events"


def test_events_list_in_sequence_with_cursor(api):
    session = make_session()
    for i in range(5):
        append_event(session_id=session.pk, type="session.status", data={"i": i})
    body = api.get(events_url(session)).json()
    assert [e["sequence"] for e in body["items"]] == [1, 2, 3, 4, 5]
    assert set(body["items"][0]) == {"id", "sequence", "type", "session_id", "turn_id", "data", "created_at"}
    after = api.get(events_url(session) + "?after=3").json()
    assert [e["sequence"] for e in after["items"]] == [4, 5] and after["total"] == 2
    assert api.get(events_url(session) + "?after=x").status_code == 400


def test_event_sequences_are_per_session(api):
    a, b = make_session(), make_session()
    append_event(session_id=a.pk, type="t", data={})
    append_event(session_id=b.pk, type="t", data={})
    append_event(session_id=a.pk, type="t", data={})
    assert [e["sequence"] for e in api.get(events_url(a)).json()["items"]] == [1, 2]
    assert [e["sequence"] for e in api.get(events_url(b)).json()["items"]] == [1]


def test_unknown_session_stream_is_404_before_streaming(api):
    session = make_session()
    response = api.get(
        f"/v1/agents/{session.agent_id}/sessions/01a22543-52e0-7c75-be76-9ac0f9022d11/events",
        HTTP_ACCEPT="text/event-stream",
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
