"""The pure part of compaction (runner/compaction/select.py): what is shortened, summarised and trimmed, with a
counter of four characters a token (llmsim's), no model and no database."""

import asyncio

import pytest

from runner.compaction import prompt, select, step
from runner.compaction.select import Context, Unit


def count(message: dict) -> int:
    return max(1, len(str(message.get("content") or "")) // 4)


SYSTEM = ({"role": "system", "content": "You are a test agent."},)


def user(seq: int, text: str) -> Unit:
    return Unit(seq, seq, True, ({"role": "user", "content": text},))


def answer(seq: int, text: str) -> Unit:
    return Unit(seq, seq, False, ({"role": "assistant", "content": text},))


def tool_round(seq: int, result: str, result_seq: int | None = None) -> Unit:
    call = {"id": f"c{seq}", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}
    return Unit(
        seq,
        result_seq or seq + 1,
        False,
        (
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{seq}", "content": result},
        ),
    )


def context(*units: Unit, summary=None, pinned=None) -> Context:
    return Context(SYSTEM, summary, pinned, tuple(units))


def test_a_context_within_the_budget_is_sent_as_it_is():
    ctx = context(user(1, "hello"), answer(2, "hi"))
    fitted = select.fit(ctx, count, 1000)
    assert fitted.messages == ctx.messages() and fitted.shortened == 0


def test_old_tool_results_are_shortened_first_oldest_first_keeping_their_head_and_saying_so():
    old, newer, newest = "a" * 4000, "b" * 4000, "c" * 4000
    ctx = context(user(1, "go"), tool_round(2, old), tool_round(4, newer), tool_round(6, newest))
    fitted = select.fit(ctx, count, 2300)
    tools = [m["content"] for m in fitted.messages if m["role"] == "tool"]
    assert tools[0].startswith("a" * 200) and "shortened to fit the context window" in tools[0]
    assert "of 4000 characters" in tools[0]
    assert tools[1] == newer  # shortening the oldest was enough
    assert tools[2] == newest  # the newest results are what the model is about to answer: whole
    assert fitted.tokens <= 2300 and fitted.shortened == 1


def test_the_cut_keeps_the_newest_messages_that_fit_and_summarises_the_rest():
    units = (user(1, "x" * 400), answer(2, "y" * 400), user(3, "z" * 400), answer(4, "w" * 40))
    assert select.cut(units, count, keep_budget=120) == 2  # the last two fit in 120 tokens
    assert select.cut(units, count, keep_budget=0) == 3  # the newest always stays
    assert select.cut(units, count, keep_budget=0, everything=True) == 4


def test_the_cut_never_separates_a_tool_call_from_its_result():
    # A message posted while the tool ran (sequence 3) sits between the call (2) and its result (4).
    units = (user(1, "x" * 400), tool_round(2, "r" * 400, result_seq=4), user(3, "q" * 40), answer(5, "a" * 40))
    k = select.cut(units, count, keep_budget=30)
    assert k == 1  # not 2: the round (2..4) and the message (3) interleave
    assert max(u.last for u in units[:k]) < min(u.first for u in units[k:])


def test_the_latest_user_message_stays_whole_after_the_summary_that_covers_it():
    units = (user(1, "old"), answer(2, "ok"), user(3, "the latest question"), tool_round(4, "result"))
    after = select.compacted(context(*units), 3, "what happened")
    messages = after.messages()
    assert messages[1] == prompt.summary_message("what happened")
    assert messages[2] == {"role": "user", "content": "the latest question"}
    assert [m["role"] for m in messages[3:]] == ["assistant", "tool"]


def test_past_the_threshold_the_plan_is_to_summarise_the_oldest_units():
    units = tuple(u for i in range(10) for u in (user(2 * i + 1, "u" * 800), answer(2 * i + 2, "a" * 200)))
    plan = select.plan(context(*units), count, window=2000, threshold=0.8)
    assert plan.fitted is None and plan.summarise == units[: len(plan.summarise)]
    assert plan.through_sequence == plan.summarise[-1].last and len(plan.summarise) >= len(units) - 2
    assert plan.tokens_before > 1600


def test_under_the_threshold_nothing_is_summarised_unless_asked():
    ctx = context(user(1, "hello"), answer(2, "hi"))
    assert select.plan(ctx, count, window=2000, threshold=0.8).fitted is not None
    requested = select.plan(ctx, count, window=2000, threshold=0.8, force="requested")
    assert requested.summarise == ctx.units and requested.through_sequence == 2


def test_when_summarising_was_not_enough_the_context_is_trimmed_and_says_so():
    ctx = context(user(1, "u" * 2000), answer(2, "a" * 2000), user(3, "the question"), summary="s" * 4000)
    plan = select.plan(ctx, count, window=1000, threshold=0.8, compacted_already=True)
    fitted = plan.fitted
    assert fitted.trimmed and fitted.tokens <= 800
    assert fitted.messages[0] == SYSTEM[0] and fitted.messages[-1] == {"role": "user", "content": "the question"}
    assert (
        "earlier messages were left out" in fitted.messages[1]["content"] or "trimmed" in fitted.messages[1]["content"]
    )


def test_only_a_latest_message_that_alone_exceeds_the_window_fails():
    ctx = context(answer(1, "a" * 400), user(2, "q" * 8000))
    with pytest.raises(select.TooLarge) as raised:
        select.plan(ctx, count, window=1000, threshold=0.8, compacted_already=True)
    assert raised.value.tokens > 1000 and raised.value.window == 1000


def test_the_summary_prompt_names_what_to_keep_and_is_recognised():
    text = prompt.summary_prompt(300)
    for kept in ("goals", "decisions", "number", "file name", "open tasks"):
        assert kept in text
    assert "300 words" in text
    assert prompt.is_summary_request([{"role": "system", "content": text}, {"role": "user", "content": "..."}])
    assert not prompt.is_summary_request([{"role": "system", "content": "You are a test agent."}])


class Result:
    def __init__(self, text):
        self.text, self.usage, self.cost_usd = text, {"input_tokens": 7, "output_tokens": 3}, 0.001


def test_a_part_too_long_for_one_summary_call_is_summarised_in_pieces_each_folded_into_the_next():
    units = tuple(user(i, f"fact {i}: " + "x" * 1600) for i in range(1, 9))  # ~400 tokens each
    requests = []

    async def call(messages):
        requests.append(messages)
        return Result(f"summary {len(requests)}")

    summary = asyncio.run(
        step.summarise(model=None, previous="summary 0", units=units, window=2000, count=count, call=call)
    )
    assert summary.text == f"summary {len(requests)}" and summary.calls == len(requests) > 1
    assert summary.usage == {"input_tokens": 7 * len(requests), "output_tokens": 3 * len(requests)}
    budget = select.budget_of(2000, 0.8)
    for i, messages in enumerate(requests):
        assert prompt.is_summary_request(messages)
        assert sum(count(m) for m in messages) <= budget  # each call fits the window, with room for its answer
        assert messages[1]["content"].startswith(f"Earlier summary:\nsummary {i}")  # the summary so far, folded in
    sent = " ".join(m[1]["content"] for m in requests)
    assert all(f"fact {i}:" in sent for i in range(1, 9))  # every unit went to exactly one piece
