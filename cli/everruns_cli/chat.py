"""One chat turn from the terminal: open the session's stream, post the message, show the events until the
turn that took the message ends, answer approvals inline, and cancel the turn on the server on Ctrl-C."""

from collections.abc import Callable
from dataclasses import dataclass

from everruns_cli.client import Api, ApiError, last_sequence, session_path
from everruns_cli.render import TURN_ENDS
from everruns_cli.stream import EventFollower

CANCEL_REASON = "cancelled from the command line (Ctrl-C)"


@dataclass
class Outcome:
    """How the turn ended: `turn.completed|failed|cancelled`, or `waiting` (an approval nobody answered)."""

    end: str
    data: dict
    cancelled_here: bool = False


class TurnTracker:
    """Tells, from the events after the post, when the turn that took our message has ended.

    Our message opens a turn of its own (`turn.started` lists it in `input_message_ids`), or joins the turn
    already running (it is seen at that turn's next model call): then the first end after it counts."""

    def __init__(self, message_id: str):
        self.message_id = message_id
        self.seen = False
        self.turn_id: str | None = None

    def observe(self, event: dict) -> bool:
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "message.user" and (data.get("message") or {}).get("id") == self.message_id:
            self.seen = True
        elif kind == "turn.started" and self.message_id in (data.get("input_message_ids") or []):
            self.seen, self.turn_id = True, event.get("turn_id")
        elif kind in TURN_ENDS and self.seen:
            return self.turn_id is None or event.get("turn_id") == self.turn_id
        return False

    def concerns(self, event: dict) -> bool:
        """Whether an event (an approval request) belongs to our turn."""
        return self.seen and (self.turn_id is None or event.get("turn_id") == self.turn_id)


# Asked for an approval: True approves, False denies, None leaves it waiting (no answer could be had).
Ask = Callable[[dict], tuple[bool, str | None] | None]


def run_turn(
    api: Api,
    agent_id: str,
    session_id: str,
    text: str,
    *,
    show: Callable[[dict], None],
    ask: Ask,
    note: Callable[[str], None],
    after: int | None = None,
) -> tuple[Outcome, int]:
    """Runs one turn; returns how it ended and the stream's cursor (the next turn's `after`)."""
    path = session_path(agent_id, session_id)
    cursor = last_sequence(api, agent_id, session_id) if after is None else after
    follower = EventFollower(api, agent_id, session_id, after=cursor, on_reconnect=lambda why: note(f"({why})"))
    # Open before posting: every token of the answer is sent after this point, so none is missed.
    follower.open()
    try:
        message = api.post(
            f"{path}/messages", {"message": {"role": "user", "content": [{"type": "text", "text": text}]}}
        )
        tracker = TurnTracker(message["id"])
        cancelled = False
        while True:
            stream = follower.events()
            try:
                for event in stream:
                    show(event)
                    if event.get("type") == "tool.approval_requested" and tracker.concerns(event):
                        answer = ask(event.get("data") or {})
                        if answer is None:
                            return Outcome("waiting", event.get("data") or {}), follower.cursor
                        approved, reason = answer
                        call_id = (event.get("data") or {}).get("tool_call_id")
                        api.post(f"{path}/tool-calls/{call_id}/approval", {"approved": approved, "reason": reason})
                    if tracker.observe(event):
                        end = Outcome(event["type"], event.get("data") or {}, cancelled)
                        return end, follower.cursor
            except KeyboardInterrupt:
                stream.close()  # the interrupted read's connection goes; the next one resumes at the cursor
                if cancelled:  # a second Ctrl-C: stop waiting for the server to confirm
                    raise
                cancelled = True
                note("(cancelling the turn…)")
                try:
                    api.post(f"{path}/cancel", {"reason": CANCEL_REASON})
                except ApiError as exc:
                    if exc.status != 409:  # 409: nothing to cancel any more, the turn's end is on its way
                        raise
    finally:
        follower.close()
