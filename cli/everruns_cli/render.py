"""What the commands print: events as a conversation (tokens as they come, tool calls and results on one line
each) or as JSON lines, and resources as tables or JSON. Nothing here talks to the server."""

import json
from typing import Any

from rich.console import Console
from rich.table import Table

TURN_ENDS = ("turn.completed", "turn.failed", "turn.cancelled")
# Shown by other events already (a tool result by tool.completed), or only noise in a conversation.
QUIET = ("llm.started", "llm.completed", "message.tool_result")
RESULT_WIDTH = 200  # a tool result longer than this is cut on screen (the event and --json keep it whole)


def one_line(value: Any, width: int = RESULT_WIDTH) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def call_text(name: str, arguments: Any) -> str:
    """`add(a=7, b=8)`: a tool call as a person reads it."""
    if isinstance(arguments, dict):
        args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())
    else:
        args = one_line(arguments)
    return f"{name}({args})"


def message_text(message: dict) -> str:
    return "".join(part.get("text", "") for part in message.get("content") or [] if part.get("type") == "text")


def json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class EventPrinter:
    """Prints one session's events for a person. Deltas are written as they come; the stored assistant
    message then only completes what the deltas missed (a reconnect loses live deltas, never stored text).

    `show_user`: print user messages too (watch; chat has the user's own words on screen already).
    `show_status`: print status changes and turn starts (watch)."""

    def __init__(self, console: Console, *, show_user: bool = False, show_status: bool = False):
        self.console = console
        self.show_user = show_user
        self.show_status = show_status
        self.streamed: dict[str, str] = {}  # message id -> the text its deltas carried
        self.mid_line = False  # a delta left the cursor after some text

    def __call__(self, event: dict) -> None:
        kind = event.get("type", "")
        data = event.get("data") or {}
        handler = getattr(self, "_" + kind.replace(".", "_"), None)
        if handler is not None:
            handler(data, event)
        elif self.show_status and kind not in QUIET:
            self._line(kind, style="dim")

    def note(self, text: str, style: str = "dim") -> None:
        self._line(text, style=style)

    def _line(self, text: str, style: str | None = None) -> None:
        self._end_text()
        self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)

    def _end_text(self) -> None:
        if self.mid_line:
            self.console.print()
            self.mid_line = False

    def _message_delta(self, data: dict, event: dict) -> None:
        delta = data.get("delta") or ""
        message_id = str(data.get("message_id"))
        if message_id not in self.streamed:
            self._end_text()
        self.streamed[message_id] = self.streamed.get(message_id, "") + delta
        self.console.print(delta, end="", markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()
        self.mid_line = bool(delta) or self.mid_line

    def _message_assistant(self, data: dict, event: dict) -> None:
        message = data.get("message") or {}
        text = message_text(message)
        streamed = self.streamed.pop(str(message.get("id")), None)
        if streamed is not None and text.startswith(streamed):
            rest = text[len(streamed) :]
            if rest:
                self.console.print(rest, end="", markup=False, highlight=False, soft_wrap=True)
            self.mid_line = self.mid_line or bool(rest)
            self._end_text()
        elif text:
            self._line(text)
        if (message.get("metadata") or {}).get("cancelled"):
            self._line("(cancelled: the partial answer is kept)", style="dim")

    def _message_user(self, data: dict, event: dict) -> None:
        if self.show_user:
            self._line(f"> {message_text(data.get('message') or {})}", style="bold")

    def _tool_started(self, data: dict, event: dict) -> None:
        self._line(f"  → {call_text(data.get('name', '?'), data.get('arguments'))}", style="cyan")

    def _tool_completed(self, data: dict, event: dict) -> None:
        if data.get("status") == "error" or data.get("error"):
            self._line(f"  ← {data.get('name', '?')} error: {one_line(data.get('error'))}", style="red")
        else:
            self._line(f"  ← {data.get('name', '?')}: {one_line(data.get('result'))}", style="cyan")

    def _tool_approval_requested(self, data: dict, event: dict) -> None:
        call = call_text(data.get("name", "?"), data.get("arguments"))
        self._line(f"  ? {call} waits for approval (tool call {data.get('tool_call_id')})", style="yellow")

    def _tool_approval_resolved(self, data: dict, event: dict) -> None:
        if data.get("approved"):
            self._line("  ✓ approved", style="green")
        else:
            reason = data.get("reason")
            self._line("  ✗ denied" + (f": {reason}" if reason else ""), style="red")

    def _llm_retrying(self, data: dict, event: dict) -> None:
        error = one_line(data.get("error"), 120)
        self._line(f"  (model call failed, retry {data.get('attempt')} in {data.get('delay_ms')} ms: {error})", "dim")

    def _context_compacted(self, data: dict, event: dict) -> None:
        self._line(f"  (context compacted: {data.get('tokens_before')} → {data.get('tokens_after')} tokens)", "dim")

    def _session_status(self, data: dict, event: dict) -> None:
        if self.show_status:
            self._line(f"[status: {data.get('status')}]", style="dim")

    def _turn_started(self, data: dict, event: dict) -> None:
        if self.show_status:
            self._line("[turn started]", style="dim")

    def _turn_completed(self, data: dict, event: dict) -> None:
        usage = data.get("usage") or {}
        tokens = f"{usage.get('input_tokens', 0)} in, {usage.get('output_tokens', 0)} out"
        self._line(f"[turn completed: {data.get('iterations')} model call(s), {tokens}]", style="dim")

    def _turn_failed(self, data: dict, event: dict) -> None:
        self._line(f"[turn failed: {error_text(data.get('error'))}]", style="bold red")

    def _turn_cancelled(self, data: dict, event: dict) -> None:
        reason = data.get("reason")
        self._line("[turn cancelled" + (f": {reason}" if reason else "") + "]", style="yellow")


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        return f"{code}: {message}" if code and message else str(message or code or "unknown error")
    return str(error or "unknown error")


# Columns of the list commands: (header, field or a function of the item).
COLUMNS = {
    "agents": [("ID", "id"), ("NAME", "name"), ("CAPABILITIES", "capabilities"), ("STATUS", "status")],
    "sessions": [("ID", "id"), ("TITLE", "title"), ("STATUS", "status"), ("CREATED", "created_at")],
    "providers": [("ID", "id"), ("NAME", "name"), ("TYPE", "provider_type"), ("STATUS", "status")],
    "models": [
        ("ID", "id"),
        ("MODEL", "model_id"),
        ("NAME", "display_name"),
        ("DEFAULT", lambda m: "yes" if m.get("is_default") else ""),
        ("STATUS", "status"),
    ],
    "messages": [("#", "sequence"), ("ROLE", "role"), ("CONTENT", lambda m: content_text(m.get("content")))],
}


def cell(item: dict, field) -> str:
    value = field(item) if callable(field) else item.get(field)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def table(kind: str, items: list[dict]) -> Table:
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for header, _ in COLUMNS[kind]:
        grid.add_column(header, overflow="fold", no_wrap=header == "ID")
    for item in items:
        grid.add_row(*(cell(item, field) for _, field in COLUMNS[kind]))
    return grid


def content_text(content: list | None) -> str:
    """A message's parts on one line: text as it is, tool calls and results compact."""
    out = []
    for part in content or []:
        kind = part.get("type")
        if kind == "text":
            out.append(part.get("text", ""))
        elif kind == "tool_call":
            out.append("→ " + call_text(part.get("name", "?"), part.get("arguments")))
        elif kind == "tool_result":
            value = part.get("error") if part.get("error") else part.get("result")
            out.append(f"← {part.get('name', '?')}: {one_line(value)}")
        else:
            out.append(f"[{kind}]")
    return " ".join(out)


def details(item: dict, fields: list[str]) -> Table:
    """One resource as `field  value` lines."""
    grid = Table(box=None, show_header=False, pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for field in fields:
        value = item.get(field)
        grid.add_row(field, one_line(value, 10_000) if isinstance(value, dict | list) else cell(item, field))
    return grid
