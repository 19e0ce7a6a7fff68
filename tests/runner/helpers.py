from runner.runtime import run_turn
from sessions import services
from sessions.models import Event, Message, Session, Turn
from tests.factories import make_agent, make_session


def post_user(session, text: str, **kwargs):
    message, _ = services.message_post(
        session=Session.objects.select_related("agent").get(pk=session.pk),
        content=[{"type": "text", "text": text}],
        **kwargs,
    )
    return message


def run_active_turn(session, owner: str = "test-owner"):
    """Run the session's queued turn in this process, the way a worker would."""

    turn = Turn.objects.filter(session=session).order_by("-id").first()
    run_turn(turn.pk, owner)
    turn.refresh_from_db()
    return turn


def event_types(session) -> list[str]:
    return list(Event.objects.filter(session=session).order_by("sequence").values_list("type", flat=True))


def messages(session) -> list[Message]:
    return list(Message.objects.filter(session=session).order_by("sequence"))


def new_session(**agent_fields):
    return make_session(make_agent(**agent_fields))


def long_message(i: int) -> str:
    """About 300 tokens (llmsim: 4 characters a token) with numbers of its own: turn i's facts."""
    facts = f"Turn {i}: the invoice total is {1000 + 7 * i} euros and the order code is {90000 + i}. "
    filler = "Please keep this in mind while we talk about the warehouse, the shipping schedule and the weather. "
    return facts + filler * 11
