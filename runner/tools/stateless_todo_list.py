"""A to-do list the model keeps in its own tool calls: each call states the whole list."""

from runner.tools.base import Capability, Tool, ToolError, obj

STATUSES = ("pending", "in_progress", "completed")
MAX_TODOS = 100


def write_todos(ctx, args):
    todos = args.get("todos")
    if not isinstance(todos, list):
        raise ToolError("todos must be a list")
    if len(todos) > MAX_TODOS:
        raise ToolError(f"at most {MAX_TODOS} todos")
    clean = []
    for i, todo in enumerate(todos):
        if not isinstance(todo, dict) or not isinstance(todo.get("content"), str) or not todo["content"].strip():
            raise ToolError(f"todo {i}: content must be a non-empty string")
        status = todo.get("status", "pending")
        if status not in STATUSES:
            raise ToolError(f"todo {i}: status must be one of {', '.join(STATUSES)}")
        clean.append({"content": todo["content"].strip(), "status": status})
    in_progress = sum(1 for t in clean if t["status"] == "in_progress")
    counts = {s: sum(1 for t in clean if t["status"] == s) for s in STATUSES}
    return {
        "todos": clean,
        "counts": counts,
        "warning": "more than one task is in progress" if in_progress > 1 else None,
    }


CAPABILITY = Capability(
    id="stateless_todo_list",
    name="To-do list",
    description="Plan multi-step work as a to-do list; each write_todos call replaces the whole list.",
    category="planning",
    system_prompt=(
        "For work with several steps, keep a to-do list with write_todos. Each call states the whole list; "
        "keep at most one item in_progress and mark items completed as soon as they are done."
    ),
    tools=[
        Tool(
            "write_todos",
            "Replace the to-do list.",
            obj(
                {
                    "todos": {
                        "type": "array",
                        "items": obj(
                            {"content": {"type": "string"}, "status": {"type": "string", "enum": list(STATUSES)}},
                            ["content", "status"],
                        ),
                    }
                },
                ["todos"],
            ),
            write_todos,
        )
    ],
)
