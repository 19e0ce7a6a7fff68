from django.db.models import QuerySet

from everruns import rows
from everruns.errors import NotFound
from everruns.selectors import get_object
from sessions.models import Event, Message, Session


def session_get(*, agent_id, session_id, with_agent: bool = False) -> Session:
    """The session under its agent, or NotFound. `with_agent`: read the agent in the same query (for the
    views that use it; the join costs the others time: GET session is the hottest read)."""
    if with_agent:
        return get_object(
            Session.objects.select_related("agent"), "Session not found", pk=session_id, agent_id=agent_id
        )
    # Written out: the hottest read of the API (everruns/rows.py).
    params = [rows.prep(Session, "id", session_id), rows.prep(Session, "agent", agent_id)]
    session = rows.fetch_one(Session, '"id" = %s AND "agent_id" = %s', params)
    if session is None:
        raise NotFound("Session not found")
    return session


def session_list(*, agent_id) -> QuerySet[Session]:
    return Session.objects.filter(agent_id=agent_id).order_by("-id")


def message_list(*, session_id) -> QuerySet[Message]:
    return Message.objects.filter(session_id=session_id).order_by("sequence")


def event_list(*, session_id, after: int = 0) -> QuerySet[Event]:
    return Event.objects.filter(session_id=session_id, sequence__gt=after).order_by("sequence")
