"""The session file system on SQLite, the database of `make run`. SQLite's LIKE ignores case, so prefix
matching there must not rest on it; the suite's PostgreSQL runs the same functions through the API tests."""

import pytest
from django.db import DEFAULT_DB_ALIAS

from agents.models import Agent, LlmModel, LlmProvider
from everruns.core import rows
from everruns.core.errors import PayloadTooLarge
from sessions.fs import files
from sessions.models import Session, SessionFile, Turn
from sessions.selectors import session_get
from tests.sqlite import sqlite_as_default


@pytest.fixture
def sqlite_session(django_db_blocker):
    """A session in an in-memory SQLite database that stands in as the default database for this test.
    Returns the session's id."""
    with sqlite_as_default(django_db_blocker, (LlmProvider, LlmModel, Agent, Session, Turn, SessionFile)):
        assert SessionFile.objects.db == DEFAULT_DB_ALIAS
        agent = Agent.objects.create(name="a", system_prompt="p")
        yield Session.objects.create(agent=agent).pk


def paths(session_id) -> set[str]:
    return set(SessionFile.objects.filter(session_id=session_id).values_list("path", flat=True))


def test_a_recursive_delete_of_A_leaves_a_alone_on_sqlite(sqlite_session):
    files.create(sqlite_session, "/a/important.txt", content="keep me")
    files.create(sqlite_session, "/A/x.txt", content="x")
    assert files.delete(sqlite_session, "/A", recursive=True) == 2
    assert paths(sqlite_session) == {"/a", "/a/important.txt"}


def test_listing_and_grep_match_the_prefix_exactly_on_sqlite(sqlite_session):
    files.create(sqlite_session, "/a/important.txt", content="needle")
    files.create(sqlite_session, "/A/x.txt", content="needle")
    files.create(sqlite_session, "/A_b/y.txt", content="needle")
    entries, total = files.children(sqlite_session, "/A", limit=10)
    assert [f.path for f in entries] == ["/A/x.txt"] and total == 1
    assert [m["path"] for m in files.grep(sqlite_session, "needle", "/A")] == ["/A/x.txt"]
    entries, total = files.children(sqlite_session, "/", limit=2, offset=1)
    assert [f.path for f in entries] == ["/A_b", "/a"] and total == 3


def test_paths_count_against_the_byte_quota_on_sqlite(sqlite_session, settings):
    settings.SESSION_FS_MAX_BYTES = 10
    files.create(sqlite_session, "/\u00e9\u00e9", content="")  # 5 bytes of path (2 characters)
    files.create(sqlite_session, "/b", content="xxx")  # 2 + 3: 10 in all
    with pytest.raises(PayloadTooLarge):
        files.create(sqlite_session, "/c", content="")


def test_written_out_reads_convert_sqlites_columns(sqlite_session):
    """everruns/core/rows.py on SQLite: its UUIDs are hex text and its dates text; the instances come back typed."""
    session = Session.objects.get(pk=sqlite_session)
    fetched = session_get(agent_id=session.agent_id, session_id=session.pk)
    assert fetched.pk == session.pk and fetched.created_at == session.created_at and fetched.tags == []


def test_a_written_out_insert_on_sqlite(sqlite_session):
    agent = Session.objects.get(pk=sqlite_session).agent
    session = rows.insert(Session(agent=agent, tags=["a"]))
    assert Session.objects.get(pk=session.pk).tags == ["a"]


def test_moving_A_moves_only_its_own_subtree_on_sqlite(sqlite_session):
    files.create(sqlite_session, "/a/important.txt", content="keep me")
    files.create(sqlite_session, "/A/x.txt", content="x")
    files.copy(sqlite_session, "/A/x.txt", "/A/sub/y.txt")
    files.move(sqlite_session, "/A", "/B")
    assert paths(sqlite_session) == {"/a", "/a/important.txt", "/B", "/B/x.txt", "/B/sub", "/B/sub/y.txt"}
    entries, total = files.children(sqlite_session, "/B", limit=10, recursive=True)
    assert [f.path for f in entries] == ["/B/sub", "/B/sub/y.txt", "/B/x.txt"] and total == 3
