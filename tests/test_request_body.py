"""Request bodies every route parses alike: JSON nested deeper than the parser can go is a malformed body."""

import pytest

from tests.factories import make_session

DEEP = 100_000


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_json_nested_too_deeply_is_a_400_validation_error(api, opening):
    session = make_session()
    closing = "]" if opening == "[" else "}"
    body = opening * DEEP + "1" + closing * DEEP
    for method, path in [
        ("POST", "/v1/agents"),
        ("PATCH", f"/v1/agents/{session.agent_id}"),
        ("POST", "/v1/llm-providers"),
        ("POST", f"/v1/agents/{session.agent_id}/sessions/{session.pk}/messages"),
    ]:
        response = api.generic(method, path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.content[:300])
        error = response.json()["error"]
        assert error["code"] == "validation_error" and "nested too deeply" in error["details"]["body"][0]
