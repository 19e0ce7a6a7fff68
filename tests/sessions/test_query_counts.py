"""SQL statements per request on the hot endpoints, pinned: raise a number only on purpose."""

import pytest

from tests.factories import make_session, text


def session_url(session) -> str:
    return f"/v1/agents/{session.agent_id}/sessions/{session.pk}"


# A list reads its page through a server-side cursor inside a transaction (everruns/api/pagination.py): the
# test's transaction makes that a SAVEPOINT and a RELEASE around the SELECT.
@pytest.mark.parametrize(
    ("name", "queries"),
    [("get_session", 1), ("create_session", 2), ("post_message", 10), ("list_events", 5), ("list_messages", 5)],
)
def test_hot_endpoints_take_a_fixed_number_of_statements(api, django_assert_num_queries, name, queries):
    session = make_session()
    url = session_url(session)
    requests = {
        "get_session": lambda: api.get(url),
        "create_session": lambda: api.post(f"/v1/agents/{session.agent_id}/sessions", {}, format="json"),
        "post_message": lambda: api.post(f"{url}/messages", text("hi"), format="json"),
        "list_events": lambda: api.get(f"{url}/events"),
        "list_messages": lambda: api.get(f"{url}/messages"),
    }
    with django_assert_num_queries(queries):
        response = requests[name]()
    assert response.status_code < 300
