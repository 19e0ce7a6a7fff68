"""The conversation sent to the model, rebuilt from stored messages (so turns resume and carry on)."""

import json

from runner.compaction.select import Context, Unit
from sessions.models import Message


def _user_content(parts: list[dict]):
    if all(p.get("type") == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    out = []
    for p in parts:
        if p.get("type") == "text":
            out.append({"type": "text", "text": p["text"]})
        elif p.get("type") == "image":
            url = p.get("url") or f"data:{p.get('media_type')};base64,{p.get('base64')}"
            out.append({"type": "image_url", "image_url": {"url": url}})
    return out


def _shown_part(part) -> object:
    """A result part as the model reads it: binary content (an MCP tool's image, audio) by its type only."""
    if isinstance(part, dict) and "base64" in part:
        return {k: v for k, v in part.items() if k != "base64"} | {"note": "binary content, not shown"}
    return part


def tool_result_text(part: dict) -> str:
    if part.get("error"):
        return json.dumps({"error": part["error"]})
    result = part.get("result")
    if isinstance(result, dict) and isinstance(result.get("content"), list):  # an MCP tool's mixed content
        result = {**result, "content": [_shown_part(p) for p in result["content"]]}
    return result if isinstance(result, str) else json.dumps(result)


def units(messages: list[Message]) -> list[Unit]:
    """OpenAI-format messages, one unit per stored user or assistant message. Tool results follow the
    assistant message that called them, even when a user message was stored between them (posted while the
    tools ran): a unit's `first` and `last` are the smallest and largest stored sequence in it."""
    results = {}
    for m in messages:
        if m.role == Message.Role.TOOL_RESULT:
            for part in m.content:
                if part.get("type") == "tool_result":
                    results[part["tool_call_id"]] = (part, m.sequence)
    out = []
    for m in messages:
        if m.role == Message.Role.USER:
            out.append(Unit(m.sequence, m.sequence, True, ({"role": "user", "content": _user_content(m.content)},)))
        elif m.role == Message.Role.ASSISTANT:
            text = "".join(p.get("text", "") for p in m.content if p.get("type") == "text")
            calls = [p for p in m.content if p.get("type") == "tool_call"]
            entry = {"role": "assistant", "content": text or None}
            if calls:
                entry["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments") or {})},
                    }
                    for c in calls
                ]
            entries, sequences = [entry], [m.sequence]
            for c in calls:
                part, sequence = results.get(c["id"]) or ({"error": "no result was recorded for this tool call"}, None)
                entries.append({"role": "tool", "tool_call_id": c["id"], "content": tool_result_text(part)})
                if sequence is not None:
                    sequences.append(sequence)
            out.append(Unit(min(sequences), max(sequences), False, tuple(entries)))
    return out


def context(system_prompt: str, messages: list[Message], compaction: dict | None = None) -> Context:
    """What the model sees: the system prompt, then the stored messages, or, after a compaction (the session's
    latest `context.compacted`), its summary in place of the messages it covers (`through_sequence`), the latest
    user message still whole after it."""
    system = ({"role": "system", "content": system_prompt},) if system_prompt else ()
    every = units(messages)
    if not compaction:
        return Context(system, None, None, tuple(every))
    through = compaction["through_sequence"]
    latest = next((u for u in reversed(every) if u.user), None)
    pinned = latest if latest is not None and latest.first <= through else None
    return Context(system, compaction["summary"], pinned, tuple(u for u in every if u.first > through))


def build(system_prompt: str, messages: list[Message], compaction: dict | None = None) -> list[dict]:
    """OpenAI-format messages (see `context`), before any shortening for the window."""
    return context(system_prompt, messages, compaction).messages()


def unanswered_tool_calls(messages: list[Message]) -> list[dict]:
    """Tool calls of the last assistant message that have no stored result (a crash mid-tools)."""
    answered = {
        p["tool_call_id"]
        for m in messages
        if m.role == Message.Role.TOOL_RESULT
        for p in m.content
        if p.get("type") == "tool_result"
    }
    for m in reversed(messages):
        if m.role == Message.Role.ASSISTANT:
            return [p for p in m.content if p.get("type") == "tool_call" and p["id"] not in answered]
    return []


def latest_controls(messages: list[Message]) -> dict:
    """The controls of the newest user message: they steer the turn's next LLM call."""
    for m in reversed(messages):
        if m.role == Message.Role.USER:
            return m.controls or {}
    return {}


def tool_call_ids(messages: list[Message]) -> set[str]:
    """Every tool call id the session's assistant messages hold."""
    return {
        p["id"] for m in messages if m.role == Message.Role.ASSISTANT for p in m.content if p.get("type") == "tool_call"
    }
