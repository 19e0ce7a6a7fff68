"""The chaos run's verdict (bench/chaos_check.py): what it must catch in a session's messages and events.

The logs are built the way the server writes them (sessions/log.py, runner/loop.py): every message with
its `message.<role>` event, a turn's steps bound to its turn id, sequences from 1.
"""

from bench.chaos_check import PostedTurn, check_session, sequence_problems, states_number, summarize, turn_of_message


class Log:
    def __init__(self):
        self.messages: list[dict] = []
        self.events: list[dict] = []

    def event(self, type: str, turn_id: str | None = None, **data) -> dict:
        sequence = len(self.events) + 1
        event = {"id": f"e{sequence}", "sequence": sequence, "type": type, "turn_id": turn_id, "data": data}
        self.events.append(event)
        return event

    def message(self, role: str, content: list, turn_id: str | None = None) -> dict:
        sequence = len(self.messages) + 1
        message = {"id": f"m{sequence}", "sequence": sequence, "role": role, "content": content, "metadata": {}}
        self.messages.append(message)
        self.event(f"message.{role}", turn_id, message=dict(message))
        return message

    def post(self, turn_id: str, a: int = 7, b: int = 8) -> PostedTurn:
        user = self.message("user", [{"type": "text", "text": f"What is {a} + {b}?"}])
        self.event("session.status", turn_id, status="running", previous="pending", error=None)
        self.event("turn.started", turn_id, input_message_ids=[user["id"]])
        return PostedTurn(user["id"], str(a + b))

    def call(self, turn_id: str, call_id: str, name: str = "add") -> None:
        self.event("llm.started", turn_id, iteration=1)
        self.event("llm.completed", turn_id, iteration=1)
        self.message("assistant", [{"type": "tool_call", "id": call_id, "name": name, "arguments": {}}], turn_id)
        self.event("tool.started", turn_id, tool_call_id=call_id)

    def result(self, turn_id: str, call_id: str, value, error=None) -> None:
        part = {"type": "tool_result", "tool_call_id": call_id, "name": "add", "result": value, "error": error}
        self.message("tool_result", [part], turn_id)
        self.event("tool.completed", turn_id, tool_call_id=call_id, status="error" if error else "success")

    def answer(self, turn_id: str, text: str) -> None:
        self.event("llm.started", turn_id, iteration=2)
        self.event("llm.completed", turn_id, iteration=2)
        self.message("assistant", [{"type": "text", "text": text}], turn_id)

    def complete(self, turn_id: str) -> None:
        responses = sum(1 for e in self.events if e["turn_id"] == turn_id and e["type"] == "message.assistant")
        self.event("turn.completed", turn_id, iterations=responses, usage={})
        self.event("session.status", turn_id, status="pending", previous="running", error=None)

    def tool_turn(self, turn_id: str, a: int, b: int) -> PostedTurn:
        posted = self.post(turn_id, a, b)
        self.call(turn_id, f"call_{turn_id}")
        self.result(turn_id, f"call_{turn_id}", {"result": a + b})
        self.answer(turn_id, f"{a} + {b} = {a + b}.")
        self.complete(turn_id)
        return posted

    def check(self, posted: list[PostedTurn], status: str = "pending"):
        return check_session(messages=self.messages, events=self.events, posted=posted, final_status=status)


def test_a_session_whose_turns_each_ran_once_passes():
    log = Log()
    posted = [log.tool_turn("t1", 7, 8), log.tool_turn("t2", 12, 30)]
    verdict = log.check(posted)
    assert verdict.problems == []
    assert [(t.outcome, t.responses, t.tool_results) for t in verdict.turns] == [("completed", 2, 1)] * 2
    summary = summarize([verdict], planned=2)
    assert (summary["completed"], summary["lost"], summary["repeated"], summary["ok"]) == (2, 0, 0, True)


def test_a_model_called_again_after_its_answer_was_stored_counts_as_repeated():
    # The resumed turn found no unanswered tool call and asked the model again: a second round.
    log = Log()
    posted = log.post("t1")
    log.call("t1", "call_a")
    log.result("t1", "call_a", {"result": 15})
    log.answer("t1", "7 + 8 = 15.")
    log.call("t1", "call_b")
    log.result("t1", "call_b", {"result": 15})
    log.answer("t1", "7 + 8 = 15.")
    log.complete("t1")
    verdict = log.check([posted])
    (turn,) = verdict.turns
    assert turn.outcome == "completed"
    assert (turn.responses, turn.repeated_responses, turn.repeated_tool_results) == (4, 2, 1)
    assert any("4 LLM responses stored, 2 expected" in p for p in verdict.problems)
    summary = summarize([verdict], planned=1)
    assert (summary["completed"], summary["repeated"], summary["ok"]) == (1, 3, False)


def test_a_tool_result_stored_twice_for_one_call_is_named():
    log = Log()
    posted = log.post("t1")
    log.call("t1", "call_a")
    log.result("t1", "call_a", {"result": 15})
    log.result("t1", "call_a", {"result": 15})
    log.answer("t1", "7 + 8 = 15.")
    log.complete("t1")
    verdict = log.check([posted])
    assert verdict.turns[0].repeated_tool_results == 1
    assert any("tool call call_a has 2 results" in p for p in verdict.problems)


def test_a_failed_turn_counts_as_failed_with_its_code_and_the_session_status_is_named():
    log = Log()
    posted = log.post("t1")
    log.call("t1", "call_a")
    error = {"code": "internal_error", "message": "The turn failed on an internal error"}
    log.event("turn.failed", "t1", error=error)
    log.event("session.status", "t1", status="failed", previous="running", error=error)
    verdict = log.check([posted], status="failed")
    assert verdict.turns[0].outcome == "failed" and verdict.turns[0].error == error
    assert any("turn.failed" in p for p in verdict.problems)
    assert any("session status 'failed'" in p for p in verdict.problems)
    summary = summarize([verdict], planned=1)
    assert (summary["completed"], summary["failed"], summary["failed_codes"]) == (0, 1, {"internal_error": 1})


def test_a_turn_that_never_ended_and_turns_never_posted_count_as_lost():
    log = Log()
    done = log.tool_turn("t1", 1, 2)
    stuck = log.post("t2", 3, 4)
    log.call("t2", "call_t2")  # its worker died; nobody resumed it
    verdict = log.check([done, stuck], status="running")
    assert [t.outcome for t in verdict.turns] == ["completed", "lost"]
    summary = summarize([verdict], planned=3)  # the third was never posted: the second never ended
    assert (summary["posted"], summary["completed"], summary["lost"], summary["not_posted"]) == (2, 1, 2, 1)


def test_event_and_message_sequences_must_be_exactly_one_to_n():
    assert sequence_problems([1, 2, 3]) == []
    assert sequence_problems([1, 2, 4]) == ["missing [3]"]
    assert sequence_problems([1, 2, 2, 3]) == ["repeated [2]"]
    assert sequence_problems([2, 1]) == ["not in ascending order"]
    assert sequence_problems([0, 1]) == ["below 1: [0]"]
    log = Log()
    posted = [log.tool_turn("t1", 7, 8)]
    del log.events[4]  # a step's event lost from the log
    problems = log.check(posted).problems
    assert "events: missing [5]" in problems


def test_every_message_is_in_exactly_one_event_and_every_user_message_was_posted():
    log = Log()
    posted = [log.tool_turn("t1", 7, 8)]
    log.message("user", [{"type": "text", "text": "What is 7 + 8?"}])  # a retried POST stored twice
    log.messages.append({**log.messages[1], "id": "ghost", "sequence": len(log.messages) + 1})  # no event
    problems = log.check(posted).problems
    assert any("was not posted by the driver" in p for p in problems)
    assert any("is in 0 message events" in p for p in problems)


def test_the_final_answer_must_state_the_expected_number():
    log = Log()
    posted = log.post("t1")
    log.call("t1", "call_a")
    log.result("t1", "call_a", {"result": 15})
    log.answer("t1", "7 + 8 = 115.")
    log.complete("t1")
    assert any("does not state 15" in p for p in log.check([posted]).problems)
    assert states_number("7 + 8 = 15.", "15") and states_number("12 - 30 = -18.", "-18")
    assert not states_number("= 115", "15") and not states_number("= -15", "15") and not states_number("1.5", "5")


def test_a_queued_turn_is_found_by_the_status_event_of_its_post_before_it_starts():
    log = Log()
    user = log.message("user", [{"type": "text", "text": "What is 7 + 8?"}])
    log.event("session.status", "t1", status="running", previous="pending", error=None)
    assert turn_of_message(log.events, user["id"]) == "t1"
    assert turn_of_message(log.events, "m-unknown") is None
    problems = log.check([PostedTurn(user["id"], "15")], status="running").problems
    assert any("turn.started 0 times" in p for p in problems) and any("never ended" in p for p in problems)
