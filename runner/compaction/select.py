"""What to shorten, summarise and trim so that a context fits its window: pure functions over OpenAI-format
messages, with the token counter given (litellm's for the model, or llmsim's four characters a token), so
they are tested without a model, a database or litellm (tests/unit/test_compaction.py)."""

from collections.abc import Callable
from dataclasses import dataclass, replace

from runner.compaction import prompt

Counter = Callable[[dict], int]

# docs/compaction.md, "Thresholds", says why these.
KEEP_SHARE = 0.5  # a compaction keeps the newest messages that fit in half the threshold
SUMMARY_SHARE = 0.15  # the summary is asked to be at most this share of the window
HEAD_SHARE = 0.05  # a shortened tool result keeps this share of the threshold (in characters: x4)
HEAD_CHARS = (200, 2000)  # ... within these bounds


@dataclass(frozen=True)
class Unit:
    """One stored user or assistant message as the model sees it; an assistant message comes with the results
    of its tool calls (never split from them). `first`, `last`: the smallest and largest stored sequence in it."""

    first: int
    last: int
    user: bool
    messages: tuple[dict, ...]


@dataclass(frozen=True)
class Context:
    """What the next call sends: the system prompt, the latest compaction's summary (if any), the latest user
    message when that summary covers it (`pinned`: kept whole, right after the summary), then the messages
    after the summary."""

    system: tuple[dict, ...]
    summary: str | None
    pinned: Unit | None
    units: tuple[Unit, ...]

    def messages(self) -> list[dict]:
        out = list(self.system)
        if self.summary is not None:
            out.append(prompt.summary_message(self.summary))
        if self.pinned is not None:
            out.extend(self.pinned.messages)
        for unit in self.units:
            out.extend(unit.messages)
        return out

    def latest_user(self) -> Unit | None:
        return self.pinned or next((u for u in reversed(self.units) if u.user), None)


@dataclass(frozen=True)
class Fitted:
    messages: list[dict]
    tokens: int  # with the tools
    shortened: int = 0  # tool results shortened
    trimmed: bool = False  # cut further than that (the last resort)


@dataclass(frozen=True)
class Plan:
    """Send `fitted`; or first summarise `summarise` (the oldest units, through `through_sequence`)."""

    fitted: Fitted | None = None
    summarise: tuple[Unit, ...] = ()
    through_sequence: int = 0
    tokens_before: int = 0


class TooLarge(Exception):
    """Even the system prompt and the latest user message alone do not fit the window."""

    def __init__(self, tokens: int, window: int):
        super().__init__(f"{tokens} tokens")
        self.tokens, self.window = tokens, window


def tokens_of(messages, count: Counter) -> int:
    return sum(count(m) for m in messages)


def budget_of(window: int, threshold: float) -> int:
    return max(1, int(window * threshold))


def head_chars(budget: int) -> int:
    low, high = HEAD_CHARS
    return min(high, max(low, int(budget * 4 * HEAD_SHARE)))


def summary_words(window: int) -> int:
    return max(50, int(window * SUMMARY_SHARE * 0.75))  # about three quarters of a word a token


def shorten(text: str, head: int, note: str = prompt.SHORTENED) -> str:
    """`text` cut to its first `head` characters with a note saying so; as it is when not longer."""
    if len(text) <= head + len(note):
        return text
    return text[:head] + note.format(kept=head, total=len(text))


def _shortened(messages: list[dict], tokens: list[int], indexes, head: int, count: Counter, over) -> int:
    """Shorten the tool results at `indexes`, in order, while `over()`; updates `messages` and `tokens`."""
    done = 0
    for i in indexes:
        if not over():
            break
        message = messages[i]
        if message.get("role") != "tool" or not isinstance(message.get("content"), str):
            continue
        short = shorten(message["content"], head)
        if short is message["content"]:
            continue
        messages[i] = {**message, "content": short}
        new = count(messages[i])
        tokens[i], done = new, done + 1
    return done


def fit(context: Context, count: Counter, budget: int, *, tools_tokens: int = 0, newest_too: bool = False) -> Fitted:
    """The context as it is, or with its old tool results shortened (oldest first) until it is within `budget`.
    The newest unit's results stay whole (the model is about to answer them) unless `newest_too`."""
    messages = context.messages()
    tokens = [count(m) for m in messages]
    if sum(tokens) + tools_tokens <= budget:
        return Fitted(messages, sum(tokens) + tools_tokens)
    end = len(messages)
    if context.units and not newest_too:
        end -= len(context.units[-1].messages)
    done = _shortened(
        messages, tokens, range(end), head_chars(budget), count, lambda: sum(tokens) + tools_tokens > budget
    )
    return Fitted(messages, sum(tokens) + tools_tokens, shortened=done)


def cut(units: tuple[Unit, ...], count: Counter, keep_budget: int, *, everything: bool = False) -> int:
    """How many of the oldest units to summarise: all but the newest that fit in `keep_budget` (the newest one
    always stays, unless `everything`). The cut moves back (keeping more) until it splits nothing stored: every
    sequence before it is below every sequence after it (a message posted while tools ran sits between a tool
    call and its result)."""
    if not units:
        return 0
    if everything:
        return len(units)
    k = len(units) - 1
    kept = tokens_of(units[-1].messages, count)
    while k > 0:
        size = tokens_of(units[k - 1].messages, count)
        if kept + size > keep_budget:
            break
        kept, k = kept + size, k - 1
    while k > 0 and max(u.last for u in units[:k]) >= min(u.first for u in units[k:]):
        k -= 1
    return k


def compacted(context: Context, k: int, summary: str) -> Context:
    """`context` with its first `k` units replaced by `summary` (the latest user message among them pinned)."""
    replaced, kept = context.units[:k], context.units[k:]
    pinned = context.pinned
    latest = next((u for u in reversed(context.units) if u.user), None)
    if latest is not None and latest in replaced:
        pinned = latest
    elif latest is not None:
        pinned = None
    return Context(context.system, summary, pinned, kept)


def plan(
    context: Context,
    count: Counter,
    *,
    window: int,
    threshold: float,
    tools_tokens: int = 0,
    force: str | None = None,
    compacted_already: bool = False,
) -> Plan:
    """What to do before the next call. `force`: "requested" (summarise everything now) or "overflow" (the
    provider refused the context: summarise even under the threshold). `compacted_already`: this step stored a
    compaction; it does not summarise twice, it trims."""
    budget = budget_of(window, threshold)
    before = tokens_of(context.messages(), count) + tools_tokens
    fitted = fit(context, count, budget, tools_tokens=tools_tokens)
    if force is None and fitted.tokens <= budget:
        return Plan(fitted=fitted, tokens_before=before)
    if not compacted_already:
        latest = context.latest_user()
        fixed = tokens_of(context.system, count) + tools_tokens
        if latest is not None and not (context.units and latest is context.units[-1]):
            fixed += tokens_of(latest.messages, count)  # kept whole wherever the cut falls
        keep_budget = int(budget * KEEP_SHARE) - fixed - int(window * SUMMARY_SHARE)
        k = cut(context.units, count, keep_budget, everything=force == "requested")
        if k or force == "requested":
            through = max((u.last for u in context.units[:k]), default=0)
            return Plan(summarise=context.units[:k], through_sequence=through, tokens_before=before)
    return Plan(fitted=trim(context, count, budget, window=window, tools_tokens=tools_tokens), tokens_before=before)


def trim(context: Context, count: Counter, budget: int, *, window: int, tools_tokens: int = 0) -> Fitted:
    """The last resort, when summarising left too much: every tool result shortened (the newest too), then the
    oldest messages after the summary left out (the summary says how many), then the summary and the other
    messages cut to their heads. The system prompt and the latest user message stay whole; when they alone
    do not fit the window, TooLarge."""
    latest = context.latest_user()
    minimal = tokens_of(context.system, count) + tools_tokens + (tokens_of(latest.messages, count) if latest else 0)
    if minimal > window:
        raise TooLarge(minimal, window)
    fitted = fit(context, count, budget, tools_tokens=tools_tokens, newest_too=True)
    units, omitted = list(context.units), 0
    while fitted.tokens > budget:
        droppable = [u for u in units[:-1] if u is not latest]
        if not droppable:
            break
        units.remove(droppable[0])
        omitted += 1
        summary = context.summary or ""
        note = prompt.OMITTED.format(count=omitted)
        shorter = replace(context, units=tuple(units), summary=f"{summary}\n{note}".strip())
        fitted = fit(shorter, count, budget, tools_tokens=tools_tokens, newest_too=True)
    if fitted.tokens <= budget:
        return replace(fitted, trimmed=True)
    # Cut every text but the system prompt's and the latest user message's to a share of what is left.
    messages = list(fitted.messages)
    keep = {id(m) for m in context.system} | {id(m) for m in (latest.messages if latest else ())}
    tokens = [count(m) for m in messages]
    spare = max(0, budget - minimal)
    cuttable = [i for i, m in enumerate(messages) if id(m) not in keep and isinstance(m.get("content"), str)]
    head = max(20, spare * 4 // max(1, len(cuttable)) // 2)
    for i in cuttable:
        messages[i] = {**messages[i], "content": shorten(messages[i]["content"], head, prompt.TRIMMED)}
        tokens[i] = count(messages[i])
    return Fitted(messages, sum(tokens) + tools_tokens, shortened=fitted.shortened, trimmed=True)
