"""A run of a chat front-end protocol (AG-UI, the AI SDK's UI message stream) as a view of the session's log.

A run is the part of the log after `start` up to the end of its turn (completed, failed, cancelled, or
parked waiting for an approval). `RunView` turns those events, and the live `message.delta`s, into the
protocol's messages through hooks that sessions/chat/agui.py and sessions/chat/aisdk.py implement. It is pure:
no database, no I/O.

Exactly once. Every message goes out with a cursor (the SSE `id:`) that says how far the client got:
the run's start, the last stored event shown, how many characters of the answer being streamed were
shown, and how many messages of the next stored event were shown (one event may make several, and a
connection may drop between them). A stream resumed from a cursor rebuilds the view by feeding the
stored events up to it again, silently, then goes on: what was shown is not shown again, what was not
is. Deltas are live only and carry their `offset` (characters before them), so a delta is shown only
where it continues the text exactly; text that a stream could not see live (it joined or resumed
mid-answer, or a delta was lost) is shown from the stored message once it is stored.
"""

import json
from dataclasses import dataclass, field

from django.conf import settings

from everruns.core.errors import PayloadTooLarge

TERMINAL = ("turn.completed", "turn.failed", "turn.cancelled")


def check_message_count(body) -> None:
    """A request carries at most CHAT_MAX_MESSAGES messages (both protocols send the whole conversation as
    `messages`, each time): checked before a protocol's parser reads them."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list) and len(messages) > settings.CHAT_MAX_MESSAGES:
        problem = f"At most {settings.CHAT_MAX_MESSAGES} messages in one request; this one has {len(messages)}."
        raise PayloadTooLarge("Too many messages", details={"messages": [problem]})


@dataclass(frozen=True)
class Cursor:
    start: int  # the run shows the events after this sequence
    sequence: int  # the last stored event whose messages were all shown
    chars: int = 0  # characters of the in-flight answer shown (0: none, or no answer in flight)
    shown: int = 0  # messages of the next stored event already shown

    def __str__(self) -> str:
        return f"{self.start}-{self.sequence}-{self.chars}-{self.shown}"

    @classmethod
    def parse(cls, raw: str | None) -> "Cursor | None":
        """`start-sequence-chars-shown`, four non-negative integers with start <= sequence; else None."""
        parts = (raw or "").strip().split("-")
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
            return None
        cursor = cls(*(int(p) for p in parts))
        return cursor if cursor.start <= cursor.sequence else None


@dataclass
class Call:
    """The LLM call in flight: its answer's text as shown so far."""

    iteration: int
    model: str | None
    text_id: str | None = None  # the streamed message's id, once its text is open
    chars: int = 0  # characters of its text shown
    live: bool = True  # False once a delta was missed: the rest comes from the stored message
    reopen: bool = False  # resumed mid-text: the protocol may need the text opened again


@dataclass
class RunView:
    """Feed the run's events in order; get (message, cursor or None) pairs to send."""

    start: int
    sequence: int = 0
    call: Call | None = None
    tools: dict = field(default_factory=dict)  # tool_call_id -> name, for calls shown
    denied: set = field(default_factory=set)  # tool calls whose approval was denied
    approvals: dict = field(default_factory=dict)  # tool_call_id -> request data, still pending
    usage: dict = field(default_factory=dict)  # model -> summed usage of this run's LLM calls
    ended: bool = False
    outcome: str | None = None  # completed | failed | cancelled | waiting
    end_data: dict = field(default_factory=dict)  # the data of the event that ended the run
    skip: int = 0  # messages of the next stored event that a resumed client has already

    def __post_init__(self):
        self.sequence = max(self.sequence, self.start)

    # --- driving --------------------------------------------------------------------------------
    def resume(self, cursor: Cursor, stored: list[dict]) -> None:
        """Rebuild the view at `cursor` from the run's stored events up to it (they were shown)."""
        for event in stored:
            if event["sequence"] <= cursor.sequence:
                self.feed(event)
        if cursor.chars and self.call is not None:
            self.call.chars, self.call.reopen = cursor.chars, True
        self.skip = cursor.shown

    def opening(self, *, resumed: bool) -> list:
        """Messages that open a response (a resumed one too); they carry no cursor."""
        return [(m, None) for m in self.on_open(resumed=resumed)]

    def cursor(self) -> Cursor:
        call = self.call
        return Cursor(self.start, self.sequence, call.chars if call and (call.text_id or call.reopen) else 0)

    def feed(self, event: dict) -> list:
        if self.ended:
            return []
        sequence = event.get("sequence")
        if sequence is None:  # live only: the last message carries the cursor (a resume shows the others again)
            messages = self._delta(event.get("data") or {})
            return [(m, self.cursor() if i == len(messages) - 1 else None) for i, m in enumerate(messages)]
        if sequence <= self.sequence:
            return []
        before = self.cursor()
        messages = self._stored(event["type"], event.get("data") or {})
        self.sequence = sequence
        skip, self.skip = self.skip, 0
        out = [(m, None) for m in self.on_resume_within(messages[:skip])] if skip else []
        for i, message in enumerate(messages):
            last = i == len(messages) - 1
            cursor = self.cursor() if last else Cursor(before.start, before.sequence, before.chars, i + 1)
            if i >= skip:
                out.append((message, cursor))
        return out

    # --- the log's semantics --------------------------------------------------------------------
    def _delta(self, data: dict) -> list:
        call, text = self.call, data.get("delta") or ""
        message_id, offset = data.get("message_id"), data.get("offset")
        if call is None or not call.live or not text or not isinstance(offset, int):
            return []
        if call.text_id is None and call.reopen and offset <= call.chars < offset + len(text):
            call.text_id, call.reopen = message_id, False  # resumed mid-text: the next delta continues it
            return self.on_text_reopen(message_id) + self.on_text_delta(message_id, self._take(call, offset, text))
        if call.text_id is None and call.chars == 0:
            if offset != 0:
                call.live = False  # joined mid-answer: shown whole once stored
                return []
            call.text_id = message_id
            return self.on_text_start(message_id) + self.on_text_delta(message_id, self._take(call, offset, text))
        if call.text_id != message_id or offset > call.chars:
            call.live = False  # a delta was missed (or another attempt): the rest comes from the store
            return []
        piece = self._take(call, offset, text)
        return self.on_text_delta(message_id, piece) if piece else []

    @staticmethod
    def _take(call: Call, offset: int, text: str) -> str:
        piece = text[call.chars - offset :]
        call.chars += len(piece)
        return piece

    def _close_text(self, final_text: str | None, message_id: str) -> list:
        """The in-flight answer is stored (`final_text`) or abandoned (None): show the rest and close it."""
        call, out = self.call, []
        if call is None:
            return out
        shown_id = call.text_id
        if shown_id is None and call.reopen and final_text is not None:
            shown_id = message_id  # resumed mid-text and no delta went on with it: the client has it open
            out += self.on_text_reopen(shown_id)
        if shown_id is None:
            if final_text:
                out += self.on_text_start(message_id) + self.on_text_delta(message_id, final_text)
                out += self.on_text_end(message_id)
        else:
            rest = (final_text or "")[call.chars :]
            if rest:
                out += self.on_text_delta(shown_id, rest)
            out += self.on_text_end(shown_id)
        call.text_id, call.chars, call.reopen = None, 0, False
        return out

    def _end_call(self) -> list:
        if self.call is None:
            return []
        out = self._close_text(None, "") + self.on_step_end()
        self.call = None
        return out

    def _stored(self, type: str, data: dict) -> list:
        if type == "llm.started":
            out = self._end_call()
            self.call = Call(iteration=data.get("iteration") or 0, model=data.get("model"))
            return out + self.on_step_start(self.call.iteration, self.call.model)
        if type in ("llm.completed", "context.compacted"):  # a compaction's summary calls count toward the run
            usage = self.usage.setdefault(data.get("model") or "", {"input_tokens": 0, "output_tokens": 0})
            for key in usage:
                usage[key] += int((data.get("usage") or {}).get(key) or 0)
            if type == "context.compacted":  # a step of its own, between the LLM calls
                return self._end_call() + self.on_compaction(data)
            return self.on_custom(type, data)
        if type == "llm.retrying":  # the failed attempt's text is abandoned; the next streams anew
            out = self._close_text(None, "")
            if self.call is not None:
                self.call.live = True
            return out + self.on_custom(type, data)
        if type == "message.assistant":
            return self._assistant(data.get("message") or {})
        if type == "message.tool_result":
            return self._tool_results(data.get("message") or {})
        if type == "tool.approval_requested":
            self.approvals[data.get("tool_call_id")] = data
            return self.on_approval_requested(data)
        if type == "tool.approval_resolved":
            request = self.approvals.pop(data.get("tool_call_id"), None)
            # A run that goes on after the approval shows the call's result: the run that asked showed the call.
            self.tools.setdefault(data.get("tool_call_id"), (request or {}).get("name"))
            if not data.get("approved"):
                self.denied.add(data.get("tool_call_id"))
            return self.on_custom(type, data)
        if type == "session.status" and data.get("status") == "waiting" and self.approvals:
            return self._end("waiting", data)
        if type in TERMINAL:
            return self._end(type.split(".")[1], data)
        return []

    def _assistant(self, message: dict) -> list:
        content = message.get("content") or []
        text = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        message_id = message.get("id") or ""
        out = self._close_text(text, message_id) if self.call is not None else []
        if self.call is None and text:  # an answer outside a call shown here (a cancelled turn's partial text)
            out += self.on_text_start(message_id) + self.on_text_delta(message_id, text) + self.on_text_end(message_id)
        for part in content:
            if part.get("type") == "tool_call":
                self.tools[part.get("id")] = part.get("name")
                out += self.on_tool_call(message_id, part)
        if self.call is not None:
            out += self.on_step_end()
            self.call = None
        return out

    def _tool_results(self, message: dict) -> list:
        out = []
        for part in message.get("content") or []:
            if part.get("type") == "tool_result" and part.get("tool_call_id") in self.tools:
                denied = part.get("tool_call_id") in self.denied
                out += self.on_tool_result(message.get("id") or "", part, denied=denied)
        return out

    def _end(self, outcome: str, data: dict) -> list:
        out = self._end_call()
        self.ended, self.outcome, self.end_data = True, outcome, data
        return out + self.on_end(outcome, data)

    # --- protocol hooks (lists of the protocol's messages) ----------------------------------------
    def on_open(self, *, resumed: bool) -> list:
        raise NotImplementedError

    def on_step_start(self, iteration: int, model: str | None) -> list:
        return []

    def on_step_end(self) -> list:
        return []

    def on_text_start(self, message_id: str) -> list:
        raise NotImplementedError

    def on_text_reopen(self, message_id: str) -> list:
        """A resumed stream goes on with a text the client has open already."""
        return []

    def on_text_delta(self, message_id: str, text: str) -> list:
        raise NotImplementedError

    def on_text_end(self, message_id: str) -> list:
        raise NotImplementedError

    def on_tool_call(self, message_id: str, part: dict) -> list:
        raise NotImplementedError

    def on_tool_result(self, message_id: str, part: dict, *, denied: bool) -> list:
        raise NotImplementedError

    def on_resume_within(self, shown: list) -> list:
        """A resumed stream goes on in the middle of one event's messages, after `shown`: what to send again
        first (a protocol that wants each response to open what it goes on with)."""
        return []

    def on_approval_requested(self, data: dict) -> list:
        return self.on_custom("tool.approval_requested", data)

    def on_custom(self, type: str, data: dict) -> list:
        return []

    def on_compaction(self, data: dict) -> list:
        """A `context.compacted`: shown as a step of its own."""
        return self.on_custom("context.compacted", data)

    def on_end(self, outcome: str, data: dict) -> list:
        raise NotImplementedError


def result_text(part: dict) -> str:
    """A tool result as text: the error, or the result as JSON (a string stays as it is)."""
    if part.get("error"):
        return str(part["error"])
    result = part.get("result")
    return result if isinstance(result, str) else json.dumps(result, separators=(",", ":"))
