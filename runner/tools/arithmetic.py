from runner.tools.base import Capability, Tool, ToolError, obj

NUMBERS = obj({"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"])


def _numbers(args: dict) -> tuple[float, float]:
    try:
        a, b = args["a"], args["b"]
    except KeyError as missing:
        raise ToolError(f"missing argument {missing}") from None
    if isinstance(a, bool) or isinstance(b, bool) or not all(isinstance(v, (int, float)) for v in (a, b)):
        raise ToolError("a and b must be numbers")
    return a, b


def _result(value: float) -> dict:
    return {"result": int(value) if isinstance(value, float) and value.is_integer() else value}


def add(ctx, args):
    a, b = _numbers(args)
    return _result(a + b)


def subtract(ctx, args):
    a, b = _numbers(args)
    return _result(a - b)


def multiply(ctx, args):
    a, b = _numbers(args)
    return _result(a * b)


def divide(ctx, args):
    a, b = _numbers(args)
    if b == 0:
        raise ToolError("division by zero")
    return _result(a / b)


CAPABILITY = Capability(
    id="test_math",
    name="Test math",
    description="Arithmetic on two numbers, for testing tool calls.",
    category="testing",
    system_prompt=(
        "You can do arithmetic with the add, subtract, multiply and divide tools. Use them for any calculation."
    ),
    tools=[
        Tool("add", "Add b to a.", NUMBERS, add),
        Tool("subtract", "Subtract b from a.", NUMBERS, subtract),
        Tool("multiply", "Multiply a by b.", NUMBERS, multiply),
        Tool("divide", "Divide a by b. Dividing by zero is an error.", NUMBERS, divide),
    ],
)
