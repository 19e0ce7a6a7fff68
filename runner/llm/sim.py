"""llmsim: a deterministic, offline LLM behind litellm's custom-provider interface.

- "What is 7 + 8?" -> an `add` tool call when the tools include it, then "7 + 8 = 15."; without the
  tool it states the result itself.
- A time question -> `get_current_time` when available.
- "call <tool name> <JSON object>" -> a call of that tool with those arguments when the tools include it
  (an MCP server's tool, say), then a sentence stating its result.
- Otherwise a short text derived from the input.
- A summary request of ours (runner.compaction.prompt) -> a deterministic summary that keeps every number
  of the text it summarises, so tests can check what survived a compaction.
The reply streams in several deltas and reports token usage. The model named `error` always fails
(for tests of failing turns). Provider settings `latency_ms` (before the first token) and
`tokens_per_second` make it slow on purpose; the model's `settings.context_window` is its window (four
characters a token): a longer input gets the provider's overflow error, as litellm raises it.
"""

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator

from litellm import ContextWindowExceededError, CustomLLM, ModelResponse
from litellm.llms.custom_llm import CustomLLMError

from runner.compaction import prompt as compaction_prompt

ARITHMETIC = re.compile(r"(-?\d+(?:\.\d+)?)\s*([+\-*/x×÷])\s*(-?\d+(?:\.\d+)?)")
OPERATIONS = {
    "+": "add",
    "-": "subtract",
    "*": "multiply",
    "x": "multiply",
    "×": "multiply",
    "/": "divide",
    "÷": "divide",
}
SYMBOLS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
CALL_DIRECTIVE = re.compile(r"^\s*call\s+([A-Za-z0-9_.:-]+)\s+(\{.*\})\s*$", re.S)
TIME_QUESTION = re.compile(r"\b(what time|current time|time is it|what.s the time|today.s date|what date)\b", re.I)


def _text_of(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _count_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _compute(op: str, a: float, b: float) -> float | None:
    if op == "add":
        return a + b
    if op == "subtract":
        return a - b
    if op == "multiply":
        return a * b
    return None if b == 0 else a / b


def plan(messages: list[dict], tool_names: set[str]) -> dict:
    """Decide the reply: {"text": str} or {"text": str, "tool_calls": [{name, arguments}]}."""
    trailing = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        trailing.insert(0, m)
    if trailing:
        calls = {c["id"]: c["function"] for m in messages for c in (m.get("tool_calls") or [])}
        lines = []
        for r in trailing:
            fn = calls.get(r.get("tool_call_id"), {})
            lines.append(_describe_result(fn.get("name", "tool"), fn.get("arguments", "{}"), _text_of(r)))
        return {"text": " ".join(lines)}
    user_text = ""
    for m in reversed(messages):
        if m.get("role") == "user":
            user_text = _text_of(m)
            break
    if (directed := call_directive(user_text, tool_names)) is not None:
        return directed
    match = ARITHMETIC.search(user_text)
    if match:
        a, symbol, b = float(match.group(1)), match.group(2), float(match.group(3))
        op = OPERATIONS[symbol]
        if op in tool_names:
            return {"text": "", "tool_calls": [{"name": op, "arguments": {"a": _plain(a), "b": _plain(b)}}]}
        result = _compute(op, a, b)
        shown = f"{_number(a)} {SYMBOLS[op]} {_number(b)}"
        if result is None:
            return {"text": f"{shown} is undefined: division by zero."}
        return {"text": f"{shown} = {_number(result)}. I applied {op} to the two numbers."}
    if TIME_QUESTION.search(user_text) and "get_current_time" in tool_names:
        return {
            "text": "",
            "tool_calls": [{"name": "get_current_time", "arguments": {"timezone": "UTC", "format": "human"}}],
        }
    snippet = " ".join(user_text.split())[:120] or "your message"
    return {"text": f'You said: "{snippet}". This is a simulated reply from llmsim.'}


def call_directive(user_text: str, tool_names: set[str]) -> dict | None:
    """`call <tool name> <JSON object>`: that call, when the tool is offered and the arguments are an object."""
    match = CALL_DIRECTIVE.match(user_text)
    if not match or match.group(1) not in tool_names:
        return None
    try:
        arguments = json.loads(match.group(2))
    except ValueError:
        return None
    if not isinstance(arguments, dict):
        return None
    return {"text": "", "tool_calls": [{"name": match.group(1), "arguments": arguments}]}


def _describe_result(name: str, raw_arguments: str, result_text: str) -> str:
    try:
        args = json.loads(raw_arguments or "{}")
    except ValueError:
        args = {}
    try:
        result = json.loads(result_text)
    except ValueError:
        result = result_text
    if isinstance(result, dict) and result.get("error"):
        return f"The {name} tool failed: {result['error']}."
    if name in SYMBOLS and isinstance(result, dict) and "result" in result:
        return f"{_number(args.get('a', 0))} {SYMBOLS[name]} {_number(args.get('b', 0))} = {_number(result['result'])}."
    if name == "get_current_time" and isinstance(result, dict):
        return f"The current time is {result.get('time') or result}."
    return f"The {name} tool returned: {json.dumps(result) if not isinstance(result, str) else result}."


def _call_id(position: int, index: int, call: dict) -> str:
    seed = f"{position}:{index}:{call['name']}:{json.dumps(call['arguments'], sort_keys=True)}"
    return "call_" + hashlib.sha1(seed.encode()).hexdigest()[:16]


def _chunks(text: str) -> list[str]:
    words = re.findall(r"\S+\s*", text)
    return words or [text]


class LlmSim(CustomLLM):
    def _reply(self, model, messages, optional_params):
        if model.split("/")[-1] == "error":
            raise CustomLLMError(status_code=500, message="llmsim: simulated provider error")
        tools = optional_params.get("tools") or []
        names = {t.get("function", {}).get("name") for t in tools}
        prompt_tokens = self.count_usage(messages, tools, "")["input_tokens"]
        check_window(model, prompt_tokens, (optional_params.get("llmsim") or {}).get("context_window"))
        if compaction_prompt.is_summary_request(messages):
            reply = {"text": summarise(messages)}
        else:
            reply = plan(messages, names)
        completion_tokens = _count_tokens(reply["text"] + json.dumps(reply.get("tool_calls") or ""))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return reply, usage

    def count_usage(self, messages: list[dict], tools: list[dict], text: str) -> dict:
        """The usage this simulator would report for `messages` and `tools` with `text` as the reply."""
        prompt_tokens = sum(_count_tokens(_text_of(m) or json.dumps(m.get("tool_calls") or "")) for m in messages)
        prompt_tokens += sum(_count_tokens(json.dumps(t)) for t in tools)
        return {"input_tokens": prompt_tokens, "output_tokens": _count_tokens(text) if text else 0}

    def script(self, model, messages, optional_params) -> tuple[float, float, list[dict]]:
        """(latency before the first chunk, seconds between text chunks, the chunks)."""
        reply, usage = self._reply(model, messages, optional_params)
        sim = optional_params.get("llmsim") or {}
        latency = float(sim.get("latency_ms") or 0) / 1000
        rate = float(sim.get("tokens_per_second") or 0)
        chunks = [
            {"text": piece, "tool_use": None, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
            for piece in (_chunks(reply["text"]) if reply["text"] else [])
        ]
        calls = reply.get("tool_calls") or []
        for i, call in enumerate(calls):
            tool_use = {
                "id": _call_id(len(messages), i, call),
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
                "index": i,
            }
            chunks.append(
                {"text": "", "tool_use": tool_use, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
            )
        chunks.append(
            {
                "text": "",
                "tool_use": None,
                "is_finished": True,
                "finish_reason": "tool_calls" if calls else "stop",
                "usage": usage,
                "index": 0,
            }
        )
        return latency, (1 / rate if rate else 0.0), chunks

    def streaming(self, model, messages, *args, **kwargs) -> Iterator[dict]:
        latency, gap, chunks = self.script(model, messages, kwargs.get("optional_params") or {})
        if latency:
            time.sleep(latency)
        for chunk in chunks:
            if gap and chunk["text"]:
                time.sleep(gap)
            yield chunk

    async def astreaming(self, model, messages, *args, **kwargs) -> AsyncIterator[dict]:
        # Waits with asyncio.sleep: a waiting call holds no thread and is cancelled at once.
        latency, gap, chunks = self.script(model, messages, kwargs.get("optional_params") or {})
        if latency:
            await asyncio.sleep(latency)
        for chunk in chunks:
            if gap and chunk["text"]:
                await asyncio.sleep(gap)
            yield chunk

    def completion(self, model, messages, api_base, custom_prompt_dict, model_response: ModelResponse, *args, **kwargs):
        optional_params = kwargs.get("optional_params") or (args[5] if len(args) > 5 else {})
        reply, usage = self._reply(model, messages, optional_params)
        model_response.choices[0].message.content = reply["text"]
        model_response.usage = usage
        return model_response


def check_window(model: str, prompt_tokens: int, window) -> None:
    """An input over the model's window gets what a provider answers (OpenAI's `context_length_exceeded`), as
    litellm raises it."""
    if window and prompt_tokens > int(window):
        raise ContextWindowExceededError(
            message=f"llmsim: this model's maximum context length is {int(window)} tokens; "
            f"the input has {prompt_tokens} tokens",
            model=model,
            llm_provider="llmsim",
        )


def summarise(messages: list[dict]) -> str:
    """A deterministic summary of the text a summary request gives: every number in it (each once, in order),
    and the opening words of each message of the transcript."""
    text = "\n".join(_text_of(m) for m in messages[1:])
    numbers = list(dict.fromkeys(compaction_prompt.NUMBER.findall(text)))
    openings = []
    for block in text.split("\n\n"):
        words = compaction_prompt.NUMBER.sub("", block).split()
        if words:
            openings.append(" ".join(words[:6]))
    summary = f"llmsim summary of {len(openings)} messages. Numbers: {', '.join(numbers) or 'none'}."
    if openings:
        summary += " Openings: " + "; ".join(openings[-8:]) + "."
    return summary


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
