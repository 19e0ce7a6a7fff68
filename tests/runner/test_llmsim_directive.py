"""llmsim's `call <tool name> <JSON object>`: the call when the agent has the tool, then its result stated."""

from runner.llm.sim import plan


def test_the_directive_calls_the_named_tool_with_its_arguments():
    reply = plan([{"role": "user", "content": 'call mcp__t__echo {"text": "hi", "n": [1, 2]}'}], {"mcp__t__echo"})
    assert reply["tool_calls"] == [{"name": "mcp__t__echo", "arguments": {"text": "hi", "n": [1, 2]}}]


def test_without_the_tool_or_with_no_object_it_is_an_ordinary_message():
    for text, tools in (('call mcp__t__echo {"text": "hi"}', set()), ("call mcp__t__echo [1]", {"mcp__t__echo"})):
        reply = plan([{"role": "user", "content": text}], tools)
        assert "tool_calls" not in reply and "simulated reply" in reply["text"]


def test_the_answer_states_the_tools_result():
    messages = [
        {"role": "user", "content": 'call mcp__t__echo {"text": "hi"}'},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "function": {"name": "mcp__t__echo", "arguments": '{"text": "hi"}'}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "echo: hi"},
    ]
    assert plan(messages, {"mcp__t__echo"})["text"] == "The mcp__t__echo tool returned: echo: hi."
