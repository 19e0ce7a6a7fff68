"""`GET /v1/agents?tag=`: a tag matches a whole element of an agent's tags, case included."""

import pytest

from tests.factories import make_agent

TAGGED = {
    "a": ["a"],
    "x-and-a": ["x", "a"],
    "longer": ["ab"],
    "upper": ["A"],
    "phrase": ["b a"],
    "none": [],
    "percent": ["100%"],
    "underscore": ["a_b"],
    "quoted": ['say "hi"'],
    "accent": ["café"],
}


@pytest.mark.parametrize(
    "tag, names",
    [
        ("a", {"a", "x-and-a"}),
        ("A", {"upper"}),
        ("ab", {"longer"}),
        ("%", set()),
        ("_", set()),
        ("100%", {"percent"}),
        ("a_b", {"underscore"}),
        ('say "hi"', {"quoted"}),
        ('"hi"', set()),
        ("café", {"accent"}),
        ("caf", set()),
    ],
)
def test_tag_filter_matches_whole_tags_exactly(api, tag, names):
    for name, tags in TAGGED.items():
        make_agent(name=name, tags=tags)
    body = api.get("/v1/agents", {"tag": tag}).json()
    assert {a["name"] for a in body["items"]} == names and body["total"] == len(names)


def test_a_filter_with_a_nul_character_is_a_400(api):
    for query in ("search=a%00b", "tag=a%00b"):
        response = api.get(f"/v1/agents?{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == "validation_error"
