"""The Vercel AI SDK's UI message stream protocol (what `useChat` speaks, `x-vercel-ai-ui-message-stream: v1`):
its chat request read into ours, and a run's events written as UI message chunks. Pure: no database, no I/O.

A turn is one assistant UI message (its id is the turn's id); each LLM call of the turn is a step.

| Everruns event | UI message chunks |
| --- | --- |
| (the response opens) | `start {messageId: <turn id>, messageMetadata: {session_id, turn_id}}` |
| `llm.started` | `finish-step` (the previous step, if open), `start-step` |
| `message.delta` | `text-start` (first), `text-delta` |
| `message.assistant` | the text not streamed yet (`text-delta`), `text-end`; per tool call `tool-input-start`, |
| | `tool-input-available` (both `dynamic` and `providerExecuted`: the server runs the tools) |
| `message.tool_result` | `tool-output-available {output}`, `tool-output-error {errorText}`, or |
| | `tool-output-denied` after a denied approval |
| `tool.approval_requested` | `tool-approval-request {approvalId: <tool call id>, toolCallId}` |
| `llm.completed`, `llm.retrying`, `tool.approval_resolved` | transient `data-<event type> {data}` |
| `context.compacted` | a step of its own: `start-step`, `data-context.compacted {data}`, `finish-step` |
| `turn.completed` | `finish-step`, `finish {finishReason: "stop", messageMetadata: {usage}}`, `[DONE]` |
| `turn.failed` | `finish-step`, `error {errorText: "<code>: <message>"}`, `finish {finishReason: "error"}`, `[DONE]` |
| `turn.cancelled` | `finish-step`, `abort {reason}`, `[DONE]` |
| `session.status: waiting` | `finish-step`, `finish {finishReason: "tool-calls"}`, `[DONE]` (approvals) |
"""

import base64
import binascii
import json
import re

from everruns.core.errors import Conflict, ValidationError
from sessions.chat.run import RunView, check_message_count

HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"x-vercel-ai-ui-message-stream", b"v1"),
]
DONE = "data: [DONE]\n\n"
DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)(?:;[\w=.+-]+)*;base64,(?P<data>.*)$", re.S)
TRIGGERS = ("submit-message", "regenerate-message")


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError("Invalid chat request", details={field: [message]})


def parse_request(body) -> dict:
    """`{id, messages: UIMessage[], trigger, messageId}` -> {messages: [{id, role, content}], approvals}.
    User messages get our parts; approvals the client answered (`approval-responded` tool parts) become
    decisions {tool_call_id, approved, reason}."""
    if not isinstance(body, dict):
        raise _invalid("body", "Must be a JSON object.")
    check_message_count(body)
    trigger = body.get("trigger", "submit-message")
    if trigger not in TRIGGERS:
        raise _invalid("trigger", f"Must be one of {', '.join(TRIGGERS)}.")
    if trigger == "regenerate-message":
        raise Conflict("Regenerating is not supported: a session's messages are never replaced; send a new message")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", "A non-empty list of UI messages.")
    out, decisions = [], []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("id"), str) or not message["id"]:
            raise _invalid(f"messages.{i}", "A UI message with a string id.")
        role, parts = message.get("role"), message.get("parts")
        if role not in ("system", "user", "assistant") or not isinstance(parts, list):
            raise _invalid(f"messages.{i}", "role system, user or assistant, and a list of parts.")
        entry = {"id": message["id"], "role": role}
        if role == "user":
            entry["content"] = [p for p in (_user_part(part, f"messages.{i}") for part in parts) if p]
        elif role == "assistant":
            decisions += [_decision(part, f"messages.{i}") for part in parts if _responded(part)]
        out.append(entry)
    return {"messages": out, "approvals": decisions}


def _user_part(part, field: str) -> dict | None:
    if not isinstance(part, dict):
        raise _invalid(field, "Each part is an object.")
    if part.get("type") == "text":
        if not isinstance(part.get("text"), str):
            raise _invalid(field, "A text part has a string text.")
        return {"type": "text", "text": part["text"]}
    if part.get("type") == "file" and str(part.get("mediaType", "")).startswith("image/"):
        url = part.get("url")
        if not isinstance(url, str):
            raise _invalid(field, "A file part has a string url.")
        if match := DATA_URL.match(url):
            try:
                base64.b64decode(match["data"], validate=True)
            except (binascii.Error, ValueError):
                raise _invalid(field, "A data URL with invalid base64.") from None
            return {"type": "image", "base64": match["data"], "media_type": match["type"]}
        return {"type": "image", "url": url}
    if part.get("type") in ("step-start",) or str(part.get("type", "")).startswith("data-"):
        return None
    raise _invalid(field, f"A {part.get('type')!r} part is not supported in a user message (text and images are).")


def _responded(part) -> bool:
    return (
        isinstance(part, dict) and part.get("state") == "approval-responded" and isinstance(part.get("approval"), dict)
    )


def _decision(part: dict, field: str) -> dict:
    approval = part["approval"]
    if not isinstance(approval.get("approved"), bool) or not isinstance(part.get("toolCallId"), str):
        raise _invalid(field, "An answered approval has a toolCallId and approval {id, approved, reason}.")
    reason = approval.get("reason")
    return {"tool_call_id": part["toolCallId"], "approved": approval["approved"], "reason": str(reason or "") or None}


def encode(chunk: dict, cursor=None) -> str:
    return (f"id: {cursor}\n" if cursor is not None else "") + f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"


class UiMessageRun(RunView):
    step_open = False

    def __init__(self, *, start: int, session_id: str, turn_id: str | None):
        super().__init__(start=start)
        self.ids = {"session_id": session_id, "turn_id": turn_id}

    def on_open(self, *, resumed: bool) -> list:
        start = {"type": "start", "messageMetadata": {k: v for k, v in self.ids.items() if v}}
        return [{**start, "messageId": self.ids["turn_id"]} if self.ids["turn_id"] else start]

    def _finish_step(self) -> list:
        was, self.step_open = self.step_open, False
        return [{"type": "finish-step"}] if was else []

    def on_step_start(self, iteration, model) -> list:
        out = self._finish_step()
        self.step_open = True
        return out + [{"type": "start-step"}]

    def on_text_start(self, message_id) -> list:
        return [{"type": "text-start", "id": message_id}]

    def on_text_delta(self, message_id, text) -> list:
        return [{"type": "text-delta", "id": message_id, "delta": text}]

    def on_text_end(self, message_id) -> list:
        return [{"type": "text-end", "id": message_id}]

    def on_tool_call(self, message_id, part) -> list:
        call = {"toolCallId": part.get("id"), "toolName": part.get("name"), "dynamic": True, "providerExecuted": True}
        return [
            {"type": "tool-input-start", **call},
            {"type": "tool-input-available", **call, "input": part.get("arguments") or {}},
        ]

    def on_tool_result(self, message_id, part, *, denied) -> list:
        call_id = part.get("tool_call_id")
        if denied:
            return [{"type": "tool-output-denied", "toolCallId": call_id}]
        common = {"toolCallId": call_id, "dynamic": True, "providerExecuted": True}
        if part.get("error"):
            return [{"type": "tool-output-error", **common, "errorText": str(part["error"])}]
        return [{"type": "tool-output-available", **common, "output": part.get("result")}]

    def on_approval_requested(self, data) -> list:
        call_id = data.get("tool_call_id")
        return [{"type": "tool-approval-request", "approvalId": call_id, "toolCallId": call_id}]

    def on_custom(self, type, data) -> list:
        return [{"type": f"data-{type}", "data": data, "transient": True}]

    def on_compaction(self, data) -> list:
        chunk = {"type": "data-context.compacted", "data": data}
        return [*self._finish_step(), {"type": "start-step"}, chunk, {"type": "finish-step"}]

    def on_end(self, outcome, data) -> list:
        out = self._finish_step()
        usage = {key: sum(u[key] for u in self.usage.values()) for key in ("input_tokens", "output_tokens")}
        if outcome == "failed":
            error = data.get("error") or {}
            text = f"{error.get('code') or 'error'}: {error.get('message') or 'The turn failed'}"
            return out + [{"type": "error", "errorText": text}, {"type": "finish", "finishReason": "error"}]
        if outcome == "cancelled":
            return out + [{"type": "abort", "reason": data.get("reason") or "cancelled"}]
        finish = {"type": "finish", "finishReason": "tool-calls" if outcome == "waiting" else "stop"}
        if self.usage:
            finish["messageMetadata"] = {"usage": usage}
        return out + [finish]
