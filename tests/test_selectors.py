"""The shared selectors (everruns/selectors.py) on SQLite, the database of `make run`; the suite's
PostgreSQL runs them through the API tests."""

import uuid

import pytest
from django.db import connections
from django.db.utils import ConnectionHandler, load_backend

from agents.models import Agent, LlmModel, LlmProvider
from everruns.core.errors import NotFound
from everruns.selectors import get_object, json_list_contains
from tests.agents.test_agent_tags import TAGGED

ALIAS = "sqlite_unit"


@pytest.fixture
def sqlite_agents(django_db_blocker):
    """The agents of TAGGED in an in-memory SQLite database, registered as ALIAS for this test."""

    settings_dict = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})
    settings_dict = settings_dict.settings["default"]
    connection = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, ALIAS)
    connections[ALIAS] = connection
    with django_db_blocker.unblock():
        with connection.schema_editor() as editor:
            for model in (LlmProvider, LlmModel, Agent):
                editor.create_model(model)
        for name, tags in TAGGED.items():
            Agent.objects.using(ALIAS).create(name=name, system_prompt="p", tags=tags)
        yield Agent.objects.using(ALIAS)
        connection.close()
    del connections[ALIAS]


@pytest.mark.parametrize(
    "tag, names",
    [
        ("a", {"a", "x-and-a"}),
        ("A", {"upper"}),
        ("ab", {"longer"}),
        ("%", set()),
        ("100%", {"percent"}),
        ('say "hi"', {"quoted"}),
        ('"hi"', set()),
        ("café", {"accent"}),
    ],
)
def test_json_list_contains_matches_whole_elements_on_sqlite(sqlite_agents, tag, names):
    found = sqlite_agents.filter(json_list_contains("tags", tag))
    assert {a.name for a in found} == names and found.count() == len(names)


def test_get_object_returns_the_row_or_raises_not_found(sqlite_agents):
    agent = sqlite_agents.get(name="a")
    assert get_object(sqlite_agents, "Agent not found", pk=agent.pk) == agent
    with pytest.raises(NotFound, match="Agent not found"):
        get_object(sqlite_agents, "Agent not found", pk=uuid.uuid4())
