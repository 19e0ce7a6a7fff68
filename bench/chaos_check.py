"""The chaos run's verdict, judged from what the API returns alone.

bench/chaos.py fetches each session's messages and events (GET .../messages and GET .../events, every
page) and hands them here with the turns it posted. These are pure functions over that JSON, with no
I/O, so tests/unit runs them without any service.

What a chaos run must leave behind, per session:
- events numbered exactly 1..N (no gap, no repeat, ascending), messages likewise;
- every message in exactly one `message.<role>` event, and every such event naming a stored message;
- exactly the user messages the driver posted (a retried POST must not store a second one);
- per posted message one turn, started once and ended once, by `turn.completed` (not `turn.failed`);
- per turn exactly the steps of a `test_math` turn on llmsim: one LLM response with the tool call, one
  tool result for it, one final answer stating the expected number. A model call repeated after a
  crash shows as a third response; a tool run twice as a second result.
"""

import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

TURN_END_TYPES = ("turn.completed", "turn.failed", "turn.cancelled")
# A test_math turn on llmsim: the response that calls the tool, then the answer after its result.
EXPECTED_RESPONSES = 2
EXPECTED_TOOL_RESULTS = 1


@dataclass(frozen=True)
class PostedTurn:
    message_id: str
    expected: str  # the number the final answer must state, e.g. "15"


@dataclass
class TurnVerdict:
    message_id: str
    turn_id: str | None
    outcome: str  # completed, failed, cancelled, lost (never ended)
    error: dict | None = None  # turn.failed's error
    responses: int = 0  # assistant messages stored for the turn
    tool_results: int = 0  # tool_result messages stored for the turn
    repeated_responses: int = 0
    repeated_tool_results: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class SessionVerdict:
    turns: list[TurnVerdict]
    problems: list[str]  # every problem of the session, its turns' included (each names its turn)

    def count(self, outcome: str) -> int:
        return sum(1 for t in self.turns if t.outcome == outcome)

    def to_dict(self) -> dict:
        return {"turns": [asdict(t) for t in self.turns], "problems": self.problems}


def sequence_problems(sequences: list[int]) -> list[str]:
    """What keeps `sequences` (as listed) from being exactly 1, 2, ..., N."""
    problems = []
    repeated = sorted(s for s, n in Counter(sequences).items() if n > 1)
    if repeated:
        problems.append(f"repeated {_some(repeated)}")
    missing = sorted(set(range(1, max(sequences, default=0) + 1)) - set(sequences))
    if missing:
        problems.append(f"missing {_some(missing)}")
    if any(s < 1 for s in sequences):
        problems.append(f"below 1: {_some(sorted(s for s in sequences if s < 1))}")
    if any(b < a for a, b in zip(sequences, sequences[1:], strict=False)):
        problems.append("not in ascending order")
    return problems


def _some(values: list, n: int = 10) -> str:
    return str(values[:n])[:-1] + (", ...]" if len(values) > n else "]")


def turn_of_message(events: list[dict], message_id: str) -> str | None:
    """The turn a user message started: the `turn.started` that names it; before that, the turn of the
    first turn-bound event after the message's own event (the POST's `session.status` running)."""
    for e in events:
        if e["type"] == "turn.started" and message_id in ((e.get("data") or {}).get("input_message_ids") or []):
            return e["turn_id"]
    seen = False
    for e in events:
        if e["type"] == "message.user" and _event_message(e).get("id") == message_id:
            seen = True
        elif seen and e.get("turn_id"):
            return e["turn_id"]
    return None


def turn_end(events: list[dict], turn_id: str) -> dict | None:
    return next((e for e in events if e.get("turn_id") == turn_id and e["type"] in TURN_END_TYPES), None)


def _event_message(event: dict) -> dict:
    return (event.get("data") or {}).get("message") or {}


def _parts(message: dict, kind: str) -> list[dict]:
    return [p for p in message.get("content") or [] if isinstance(p, dict) and p.get("type") == kind]


def states_number(text: str, number: str) -> bool:
    """`number` appears in `text` as a whole number (not inside 115, 1.5 or -15)."""
    return re.search(rf"(?<![\d.\-]){re.escape(number)}(?!\d|\.\d)", text) is not None


def judge_turn(posted: PostedTurn, turn_id: str | None, events: list[dict], messages: list[dict]) -> TurnVerdict:
    """One posted turn from its events and the messages stored for it (both in sequence order)."""
    if turn_id is None:
        return TurnVerdict(posted.message_id, None, "lost", problems=["its message started no turn"])
    types = Counter(e["type"] for e in events)
    ends = {t: types[t] for t in TURN_END_TYPES if types[t]}
    if types["turn.failed"]:
        outcome = "failed"
    elif types["turn.cancelled"]:
        outcome = "cancelled"
    elif types["turn.completed"]:
        outcome = "completed"
    else:
        outcome = "lost"
    verdict = TurnVerdict(posted.message_id, turn_id, outcome)
    problems = verdict.problems
    if outcome == "lost":
        problems.append("never ended (no turn.completed, turn.failed or turn.cancelled)")
    if sum(ends.values()) > 1:
        problems.append(f"ended {sum(ends.values())} times: {ends}")
    if types["turn.started"] != 1:
        problems.append(f"turn.started {types['turn.started']} times")
    failed = next((e for e in events if e["type"] == "turn.failed"), None)
    if failed:
        verdict.error = (failed.get("data") or {}).get("error")
        problems.append(f"turn.failed (event {failed['sequence']}): {verdict.error}")
    if outcome == "cancelled":
        problems.append("cancelled (the chaos run cancels nothing)")

    responses = [m for m in messages if m["role"] == "assistant"]
    results = [m for m in messages if m["role"] == "tool_result"]
    verdict.responses, verdict.tool_results = len(responses), len(results)
    verdict.repeated_responses = max(0, len(responses) - EXPECTED_RESPONSES)
    verdict.repeated_tool_results = max(0, len(results) - EXPECTED_TOOL_RESULTS)
    if verdict.repeated_responses:
        problems.append(
            f"{len(responses)} LLM responses stored, {EXPECTED_RESPONSES} expected (messages "
            + ", ".join(str(m["sequence"]) for m in responses)
            + ")"
        )
    if verdict.repeated_tool_results:
        problems.append(
            f"{len(results)} tool results stored, {EXPECTED_TOOL_RESULTS} expected (messages "
            + ", ".join(str(m["sequence"]) for m in results)
            + ")"
        )

    calls = Counter(p.get("id") for m in responses for p in _parts(m, "tool_call"))
    answered = Counter(p.get("tool_call_id") for m in results for p in _parts(m, "tool_result"))
    for call_id, n in calls.items():
        if n > 1:
            problems.append(f"tool call {call_id} made by {n} responses")
        if answered[call_id] > 1:
            problems.append(f"tool call {call_id} has {answered[call_id]} results")
        elif not answered[call_id] and outcome == "completed":
            problems.append(f"tool call {call_id} has no result")
    for call_id in answered.keys() - calls.keys():
        problems.append(f"a tool result answers {call_id}, which no response of the turn called")
    for m in results:
        for p in _parts(m, "tool_result"):
            if p.get("error"):
                problems.append(f"tool call {p.get('tool_call_id')} returned an error: {p['error']}")

    if outcome == "completed":
        final = responses[-1] if responses else None
        if final is None or _parts(final, "tool_call"):
            problems.append("completed without a final answer")
        else:
            text = " ".join(p.get("text", "") for p in _parts(final, "text"))
            if not states_number(text, posted.expected):
                problems.append(f"final answer {text!r} does not state {posted.expected}")
        if len(responses) < EXPECTED_RESPONSES:
            problems.append(f"completed with {len(responses)} LLM responses, {EXPECTED_RESPONSES} expected")
    completed = next((e for e in events if e["type"] == "turn.completed"), None)
    iterations = ((completed or {}).get("data") or {}).get("iterations")
    if completed and iterations != len(responses):
        problems.append(f"turn.completed counts {iterations} iterations for {len(responses)} stored responses")
    if types["llm.completed"] != len(responses):
        problems.append(f"{types['llm.completed']} llm.completed events for {len(responses)} stored responses")
    if types["tool.completed"] != len(results):
        problems.append(f"{types['tool.completed']} tool.completed events for {len(results)} stored results")
    return verdict


def check_session(
    *, messages: list[dict], events: list[dict], posted: list[PostedTurn], final_status: str | None = None
) -> SessionVerdict:
    """Judge one session from its full message and event lists (as the API lists them) and the turns
    the driver posted to it, in the order it posted them."""
    problems: list[str] = []
    problems += [f"events: {p}" for p in sequence_problems([e["sequence"] for e in events])]
    problems += [f"messages: {p}" for p in sequence_problems([m["sequence"] for m in messages])]

    stored: dict[str, dict] = {}
    for m in messages:
        if m["id"] in stored:
            problems.append(f"message {m['id']} listed twice")
        stored[m["id"]] = m
    message_events = [e for e in events if e["type"].startswith("message.")]
    named = Counter(_event_message(e).get("id") for e in message_events)
    turn_of: dict[str, str | None] = {}
    for e in message_events:
        carried = _event_message(e)
        m = stored.get(carried.get("id"))
        if m is None:
            problems.append(
                f"event {e['sequence']} ({e['type']}) names message {carried.get('id')}, which is not stored"
            )
            continue
        turn_of[m["id"]] = e.get("turn_id")
        if e["type"] != f"message.{m['role']}" or carried.get("content") != m["content"]:
            problems.append(f"event {e['sequence']} ({e['type']}) differs from stored message {m['sequence']}")
    for m in messages:
        if named[m["id"]] != 1:
            problems.append(f"message {m['sequence']} ({m['role']}) is in {named[m['id']]} message events")

    posted_ids = {p.message_id for p in posted}
    for m in messages:
        if m["role"] == "user" and m["id"] not in posted_ids:
            problems.append(f"user message {m['sequence']} ({m['id']}) was not posted by the driver")
        if m["role"] != "user" and m["id"] in turn_of and not turn_of[m["id"]]:
            problems.append(f"{m['role']} message {m['sequence']} belongs to no turn")
    for p in posted:
        if p.message_id not in stored:
            problems.append(f"posted message {p.message_id} is not stored")

    by_turn: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        if e.get("turn_id"):
            by_turn[e["turn_id"]].append(e)
    turns = []
    for index, p in enumerate(posted, 1):
        turn_id = turn_of_message(events, p.message_id)
        own = [m for m in messages if m["role"] != "user" and turn_of.get(m["id"]) == turn_id and turn_id]
        verdict = judge_turn(p, turn_id, by_turn.get(turn_id, []), own)
        turns.append(verdict)
        problems += [f"turn {index} ({turn_id}): {problem}" for problem in verdict.problems]
    known = {t.turn_id for t in turns}
    for turn_id in by_turn.keys() - known:
        problems.append(
            f"turn {turn_id} belongs to no posted message ({dict(Counter(e['type'] for e in by_turn[turn_id]))})"
        )
    if final_status is not None and final_status != "pending":
        problems.append(f"session status {final_status!r} at the end, 'pending' expected")
    return SessionVerdict(turns=turns, problems=problems)


def summarize(verdicts: list[SessionVerdict], planned: int) -> dict:
    """The run's figures. `lost` counts turns posted that never ended plus turns never posted (the
    driver posts a session's next turn only once the previous one ended)."""
    turns = [t for v in verdicts for t in v.turns]
    outcomes = Counter(t.outcome for t in turns)
    repeated_responses = sum(t.repeated_responses for t in turns)
    repeated_tool_results = sum(t.repeated_tool_results for t in turns)
    errors = Counter(str((t.error or {}).get("code")) for t in turns if t.outcome == "failed")
    problems = sum(len(v.problems) for v in verdicts)
    summary = {
        "planned": planned,
        "posted": len(turns),
        "completed": outcomes["completed"],
        "failed": outcomes["failed"],
        "failed_codes": dict(errors),
        "cancelled": outcomes["cancelled"],
        "lost": outcomes["lost"] + (planned - len(turns)),
        "not_posted": planned - len(turns),
        "repeated": repeated_responses + repeated_tool_results,
        "repeated_llm_responses": repeated_responses,
        "repeated_tool_results": repeated_tool_results,
        "sessions_with_problems": sum(1 for v in verdicts if v.problems),
        "problems": problems,
    }
    summary["ok"] = summary["completed"] == planned and problems == 0
    return summary
