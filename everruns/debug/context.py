"""The context view: what the session's next LLM call will be sent.

The debug pages import the runner here, and only here, to build it with the runner's own functions
(`registry.for_agent`, `history.build`, `resolve`), so the view cannot drift from what the loop sends. None
of them imports litellm (the runner/llm/ package alone does), so the web process stays light.
tests/debug/test_context.py compares this view with the request a real turn then sends.
"""

import json
import math
from dataclasses import dataclass, field
from typing import ClassVar

from django.conf import settings

from runner import history
from runner.errors import TurnError
from runner.resolution import resolve
from runner.tools import registry
from sessions.models import Event, Message, Session

# A rough rule for English text with GPT-style tokenizers; the model's own tokenizer is not loaded in the
# web process (litellm's import alone costs seconds and ~200 MB). The page labels the figure an estimate and
# shows the input tokens the last call really used beside it.
CHARS_PER_TOKEN = 4


@dataclass
class NextCall:
    model: str | None
    model_error: str | None
    system_prompt: str
    messages: list[dict]
    tools: list[dict]
    reasoning_effort: str | None
    pending_tool_calls: list[dict]
    estimated_tokens: int
    last_input_tokens: int | None
    notes: list[str] = field(default_factory=list)
    # The latest `context.compacted`'s data ({summary, through_sequence, tokens_before, tokens_after, ...}), whose
    # summary stands in `messages` for the messages it replaced; and the model's window when its settings say.
    compaction: dict | None = None
    context_window: int | None = None
    chars_per_token: ClassVar[int] = CHARS_PER_TOKEN

    @property
    def messages_json(self) -> str:
        return json.dumps(self.messages, indent=2, ensure_ascii=False)

    @property
    def tools_json(self) -> str:
        return json.dumps(self.tools, indent=2, ensure_ascii=False)


def estimate_tokens(messages: list[dict], tools: list[dict]) -> int:
    characters = len(json.dumps(messages, ensure_ascii=False)) + (len(json.dumps(tools)) if tools else 0)
    return math.ceil(characters / CHARS_PER_TOKEN)


def next_call(session: Session) -> NextCall:
    agent = session.agent
    system_prompt, tools = registry.system_prompt_and_tools(agent)
    messages = list(Message.objects.filter(session_id=session.pk).order_by("sequence"))
    controls = history.latest_controls(messages)
    built = history.build(system_prompt, messages, session.compaction)
    schemas = [t.openai_schema() for t in tools]
    model, model_error, window = None, None, None
    try:
        resolved = resolve(
            controls_model_id=controls.get("model_id"),
            session_model_id=session.model_id,
            agent_model_id=agent.default_model_id,
        )
        model = f"{resolved.display} ({resolved.litellm_model})"
        window = resolved.context_window
    except TurnError as exc:
        model_error = f"{exc.code}: {exc.message}"
    last = (
        Event.objects.filter(session_id=session.pk, type="llm.completed")
        .order_by("-sequence")
        .values_list("data", flat=True)
        .first()
    )
    notes = []
    pending = history.unanswered_tool_calls(messages)
    if pending:
        notes.append("These tool calls have no result yet; the turn runs them before its next LLM call.")
    if not messages:
        notes.append("No messages yet: the first user message will follow the system prompt.")
    compaction = None
    if session.compaction:
        compaction = (
            Event.objects.filter(session_id=session.pk, sequence=session.compaction["sequence"])
            .values_list("data", flat=True)
            .first()
        )
    estimated = estimate_tokens(built, schemas)
    if window and estimated > window * settings.COMPACTION_THRESHOLD:
        notes.append(
            f"Past COMPACTION_THRESHOLD ({settings.COMPACTION_THRESHOLD:g}) of the model's window of {window} tokens: "
            "the next call first shortens old tool results, then compacts (docs/compaction.md)."
        )
    return NextCall(
        model=model,
        model_error=model_error,
        system_prompt=system_prompt,
        messages=built,
        tools=schemas,
        reasoning_effort=(controls.get("reasoning") or {}).get("effort"),
        pending_tool_calls=pending,
        estimated_tokens=estimated,
        last_input_tokens=((last or {}).get("usage") or {}).get("input_tokens"),
        notes=notes,
        compaction=compaction,
        context_window=window,
    )
