from django.db.models import QuerySet

from everruns.core import rows
from everruns.core.errors import NotFound
from sessions.models import Event, Message, Session

TABLE = Session._meta.db_table


def session_get(*, agent_id, session_id, with_agent: bool = False) -> Session:
    """The session under its agent, or NotFound. `with_agent`: read the agent in the same query (for the
    views that use it; the join costs the others time: GET session is the hottest read)."""
    # Written out: the hottest reads of the API (everruns/core/rows.py).
    params = [rows.prep(Session, "id", session_id), rows.prep(Session, "agent", agent_id)]
    where = f'"{TABLE}"."id" = %s AND "{TABLE}"."agent_id" = %s'
    session = rows.fetch_one(Session, where, params, related="agent" if with_agent else None)
    if session is None:
        raise NotFound("Session not found")
    return session


def session_list(*, agent_id) -> QuerySet[Session]:
    return Session.objects.filter(agent_id=agent_id).order_by("-id")


def message_list(*, session_id) -> QuerySet[Message]:
    return Message.objects.filter(session_id=session_id).order_by("sequence")


def event_list(*, session_id, after: int = 0) -> QuerySet[Event]:
    return Event.objects.filter(session_id=session_id, sequence__gt=after).order_by("sequence")
