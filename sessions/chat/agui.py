"""AG-UI (the protocol of CopilotKit and assistant-ui): its input read into ours, and a run's events written
as AG-UI events. Pure: no database, no I/O. The `ag-ui-protocol` package has the types and the encoding.

| Everruns event | AG-UI |
| --- | --- |
| (the response opens) | `RUN_STARTED {threadId, runId}`, metadata `everruns: {session_id, turn_id}` |
| `llm.started` | `STEP_STARTED {stepName: "llm_call_<iteration>"}` |
| `message.delta` | `TEXT_MESSAGE_START` (first), `TEXT_MESSAGE_CONTENT` |
| `message.assistant` | the text not streamed yet, `TEXT_MESSAGE_END`; per tool call `TOOL_CALL_START/ARGS/END`; |
| | `STEP_FINISHED` |
| `message.tool_result` | `TOOL_CALL_RESULT {messageId, toolCallId, content}` (an error as its text) |
| `llm.completed`, `llm.retrying`, | `CUSTOM {name: <event type>, value: <data>}` |
| `tool.approval_requested`, `tool.approval_resolved` | |
| `context.compacted` | `STEP_STARTED {stepName: "context_compaction"}`, `CUSTOM {name: "context.compacted"}`, |
| | `STEP_FINISHED`; its usage counts in `RUN_FINISHED`'s |
| `turn.completed` | `RUN_FINISHED` with `usage` per model |
| `turn.completed {pending_tool_calls}` | `RUN_FINISHED {outcome: {type: success, pendingToolCallIds}}`: the calls of |
| | front-end tools (shown as `TOOL_CALL_*` with the response) wait for the client's `tool` messages |
| `turn.failed` | `RUN_ERROR {message, code}` |
| `turn.cancelled` | `RUN_FINISHED {outcome: cancelled}` |
| `session.status: waiting` | `RUN_FINISHED {outcome: interrupt}`: an interrupt per call awaiting approval |
"""

import json

from ag_ui.core import (
    CustomEvent,
    Interrupt,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedCancelledOutcome,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.encoder import EventEncoder
from pydantic import ValidationError as PydanticError

from everruns.core.errors import ValidationError
from sessions.chat.run import RunView, check_message_count, result_text

APPROVAL_REASON = "tool_approval"
# What an answer to a tool-approval interrupt holds (its resume entry's `payload`).
APPROVAL_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "reason": {"type": "string"}},
    "required": ["approved"],
}
# Front-end tools (`RunAgentInput.tools`): how many a run may declare, and how long a name may be.
MAX_CLIENT_TOOLS = 100
MAX_TOOL_NAME = 128
EMPTY_PARAMETERS = {"type": "object", "properties": {}}
_encoder = EventEncoder()


def parse_input(body) -> RunAgentInput:
    check_message_count(body)
    try:
        return RunAgentInput.model_validate(body)
    except PydanticError as exc:
        details = {".".join(str(p) for p in e["loc"]) or "body": [e["msg"]] for e in exc.errors()[:20]}
        raise ValidationError("Invalid RunAgentInput", details=details) from None


def content_parts(content) -> list[dict]:
    """A user message's content as our parts (text and images)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    parts = []
    for part in content:
        if part.type == "text":
            parts.append({"type": "text", "text": part.text})
        elif part.type == "image" and part.source.type == "url":
            parts.append({"type": "image", "url": part.source.value})
        elif part.type == "image" and part.source.type == "data":
            parts.append({"type": "image", "base64": part.source.value, "media_type": part.source.mime_type})
        else:
            kind = f"{part.type} ({part.source.type})" if part.type == "image" else part.type
            raise ValidationError("Unsupported content", details={"messages": [f"A {kind} part is not supported."]})
    return parts


def tool_content(content) -> str:
    """A tool message's content as the call's result: its text (a tool returning data sends it as text)."""
    if isinstance(content, str):
        return content
    if any(part.type != "text" for part in content):
        raise ValidationError("Unsupported content", details={"messages": ["A tool message's content is text."]})
    return "".join(part.text for part in content)


def incoming(run_input: RunAgentInput) -> list[dict]:
    """The input's messages as {id, role, content}: user messages with our parts, tool messages (a front-end
    tool's result) with their call's id, the text as content and the error, assistant messages with the ids of
    their calls; other roles with no content (the session keeps the assistant's own messages)."""
    out = []
    for message in run_input.messages:
        entry = {"id": message.id, "role": message.role}
        if message.role == "user":
            entry["content"] = content_parts(message.content)
        elif message.role == "tool":
            error = message.error or None
            entry.update(tool_call_id=message.tool_call_id, content=tool_content(message.content), error=error)
        elif message.role == "assistant":
            entry["tool_call_ids"] = [call.id for call in message.tool_calls or []]
        out.append(entry)
    return out


def client_tools(run_input: RunAgentInput) -> list[dict]:
    """The run's front-end tools as {name, description, parameters} (offered to the model next to the agent's):
    a name of 1 to MAX_TOOL_NAME characters, once; parameters a JSON Schema object (none: no arguments)."""
    declared = run_input.tools or []
    if len(declared) > MAX_CLIENT_TOOLS:
        raise ValidationError("Invalid tools", details={"tools": [f"At most {MAX_CLIENT_TOOLS} tools."]})
    tools, problems = [], {}
    for i, tool in enumerate(declared):
        parameters = EMPTY_PARAMETERS if tool.parameters is None else tool.parameters
        if not tool.name.strip() or len(tool.name) > MAX_TOOL_NAME:
            problems[f"tools.{i}.name"] = [f"1 to {MAX_TOOL_NAME} characters."]
        elif any(t["name"] == tool.name for t in tools):
            problems[f"tools.{i}.name"] = [f"{tool.name!r} is declared twice."]
        if not isinstance(parameters, dict):
            problems[f"tools.{i}.parameters"] = ["A JSON Schema object."]
        tools.append({"name": tool.name, "description": tool.description, "parameters": parameters})
    if problems:
        raise ValidationError("Invalid tools", details=dict(list(problems.items())[:20]))
    return tools


def approvals(run_input: RunAgentInput) -> list[dict]:
    """The resume entries as approval decisions: {tool_call_id, approved, reason}."""
    decisions = []
    for entry in run_input.resume or []:
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        if entry.status == "cancelled":
            decisions.append({"tool_call_id": entry.interrupt_id, "approved": False, "reason": "cancelled"})
            continue
        if not isinstance(payload.get("approved"), bool):
            message = "A resolved tool approval needs payload {approved: boolean, reason?: string}."
            raise ValidationError("Invalid resume entry", details={"resume": [message]})
        reason = payload.get("reason")
        decisions.append(
            {"tool_call_id": entry.interrupt_id, "approved": payload["approved"], "reason": str(reason or "") or None}
        )
    return decisions


def encode(event, cursor=None) -> str:
    """One SSE message: the event's JSON (the package's encoding), with the cursor as its id and in its
    metadata (`everruns.cursor`): AG-UI's client does not hand SSE ids to the app, but it does hand over
    each event it applied, so an app can resume from the last one it applied (`Last-Event-ID`)."""
    if cursor is None:
        return _encoder.encode(event)
    metadata = {
        **(event.metadata or {}),
        "everruns": {**(event.metadata or {}).get("everruns", {}), "cursor": str(cursor)},
    }
    return f"id: {cursor}\n" + _encoder.encode(event.model_copy(update={"metadata": metadata}))


COMPACTION_STEP = "context_compaction"


class AguiRun(RunView):
    def __init__(self, *, start: int, thread_id: str, run_id: str, session_id: str, turn_id: str | None):
        super().__init__(start=start)
        self.thread_id, self.run_id = thread_id, run_id
        self.ids = {"session_id": session_id, "turn_id": turn_id}

    def on_open(self, *, resumed: bool) -> list:
        out = [RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id, metadata={"everruns": self.ids})]
        if resumed and self.call is not None:  # a new response is a new run to the client: open the step again
            out += self.on_step_start(self.call.iteration, self.call.model)
        return out

    def on_step_start(self, iteration, model) -> list:
        self.step = f"llm_call_{iteration}"
        return [StepStartedEvent(step_name=self.step)]

    def on_step_end(self) -> list:
        return [StepFinishedEvent(step_name=self.step)]

    def on_text_start(self, message_id) -> list:
        return [TextMessageStartEvent(message_id=message_id, role="assistant")]

    def on_text_reopen(self, message_id) -> list:
        return self.on_text_start(message_id)  # the client goes on with its message of this id

    def on_text_delta(self, message_id, text) -> list:
        return [TextMessageContentEvent(message_id=message_id, delta=text)]

    def on_text_end(self, message_id) -> list:
        return [TextMessageEndEvent(message_id=message_id)]

    def on_tool_call(self, message_id, part) -> list:
        call_id = part.get("id")
        return [
            ToolCallStartEvent(tool_call_id=call_id, tool_call_name=part.get("name"), parent_message_id=message_id),
            ToolCallArgsEvent(tool_call_id=call_id, delta=json.dumps(part.get("arguments") or {})),
            ToolCallEndEvent(tool_call_id=call_id),
        ]

    def on_tool_result(self, message_id, part, *, denied) -> list:
        return [
            ToolCallResultEvent(
                message_id=message_id, tool_call_id=part.get("tool_call_id"), content=result_text(part), role="tool"
            )
        ]

    def on_custom(self, type, data) -> list:
        return [CustomEvent(name=type, value=data)]

    def on_compaction(self, data) -> list:
        step = COMPACTION_STEP
        return [
            StepStartedEvent(step_name=step),
            *self.on_custom("context.compacted", data),
            StepFinishedEvent(step_name=step),
        ]

    def on_resume_within(self, shown) -> list:
        # The client applies a start of a message or tool call it has as a no-op, and wants one in each run.
        closed = {m.message_id for m in shown if isinstance(m, TextMessageEndEvent)}
        closed |= {m.tool_call_id for m in shown if isinstance(m, ToolCallEndEvent)}
        return [
            m
            for m in shown
            if (isinstance(m, TextMessageStartEvent) and m.message_id not in closed)
            or (isinstance(m, ToolCallStartEvent) and m.tool_call_id not in closed)
        ]

    def on_end(self, outcome, data) -> list:
        usage = [
            TokenUsage(
                model=model or None,
                input_tokens=u["input_tokens"],
                output_tokens=u["output_tokens"],
                total_tokens=u["input_tokens"] + u["output_tokens"],
            )
            for model, u in self.usage.items()
        ] or None
        if outcome == "failed":
            error = data.get("error") or {}
            return [
                RunErrorEvent(message=error.get("message") or "The turn failed", code=error.get("code"), usage=usage)
            ]
        finished = {"thread_id": self.thread_id, "run_id": self.run_id, "usage": usage}
        if outcome == "cancelled":
            return [RunFinishedEvent(**finished, outcome=RunFinishedCancelledOutcome())]
        if outcome == "completed" and data.get("pending_tool_calls"):
            pending = [call.get("id") for call in data["pending_tool_calls"]]
            return [RunFinishedEvent(**finished, outcome=RunFinishedSuccessOutcome(pending_tool_call_ids=pending))]
        if outcome == "waiting":
            interrupts = [
                Interrupt(
                    id=call_id,
                    reason=APPROVAL_REASON,
                    message=f"Approve the call of {request.get('name')} with {json.dumps(request.get('arguments'))}?",
                    tool_call_id=call_id,
                    response_schema=APPROVAL_SCHEMA,
                )
                for call_id, request in self.approvals.items()
            ]
            return [RunFinishedEvent(**finished, outcome=RunFinishedInterruptOutcome(interrupts=interrupts))]
        return [RunFinishedEvent(**finished)]
