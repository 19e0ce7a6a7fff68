"""Every text of ours that compaction puts in front of a model, in one place (docs/compaction.md says why)."""

import re

# The first line says what the call is; llmsim recognises a summary request by it (is_summary_request).
SUMMARY_OPENING = "You compact a conversation between a user and an AI agent so that the agent can go on with it."
SUMMARY_PROMPT = (
    SUMMARY_OPENING
    + """
The conversation (or its part so far) is below. The agent will see your summary instead of those messages, and
nothing else of them: anything you leave out is lost to it. Write the summary the agent needs to continue as if
it had read everything. Keep, exactly as written:
- the user's goals and requests, and any constraints or preferences they stated;
- decisions made and their reasons, and what was tried and failed;
- facts learned, and every number, amount, date, identifier, name, URL and file name;
- what tools were used for and what they found;
- open tasks and questions: what remains to do and what the agent promised.
If it starts with an earlier summary, fold that summary in: drop nothing of it that still matters.
Write plain, dense prose or short lists, in the language of the conversation, at most {words} words. Do not
address the user, do not answer the conversation, and do not add anything that is not in it."""
)

# What the model sees in place of the messages a compaction replaced.
SUMMARY_HEADER = "[Summary of the earlier conversation, which was compacted to fit the context window]\n"
SHORTENED = "\n[... shortened to fit the context window: the first {kept} of {total} characters of this tool result]"
TRIMMED = "\n[... trimmed to fit the context window: the first {kept} of {total} characters]"
OMITTED = "[{count} earlier messages were left out to fit the context window]"

_TRANSCRIPT_ROLES = {"user": "User", "assistant": "Agent", "tool": "Tool result"}


def summary_prompt(words: int) -> str:
    return SUMMARY_PROMPT.format(words=words)


def is_summary_request(messages: list[dict]) -> bool:
    """Whether `messages` are a summary request of ours (llmsim answers those with a summary)."""
    first = messages[0] if messages else {}
    return first.get("role") == "system" and str(first.get("content") or "").startswith(SUMMARY_OPENING)


def summary_message(summary: str) -> dict:
    return {"role": "user", "content": SUMMARY_HEADER + summary}


def transcript(previous_summary: str | None, messages: list[dict]) -> str:
    """The text the summariser reads: the earlier summary, then each message as `Role: text`."""
    lines = [f"Earlier summary:\n{previous_summary}\n"] if previous_summary else []
    for message in messages:
        role = _TRANSCRIPT_ROLES.get(message.get("role"), message.get("role"))
        text = text_of(message)
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            text += f"\n(called the tool {function.get('name')} with {function.get('arguments')})"
        if text.strip():
            lines.append(f"{role}: {text.strip()}")
    return "\n\n".join(lines)


def text_of(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
