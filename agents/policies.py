"""The rules of the turn controls that agents and sessions carry: an agent's `tool_policy` (which tools wait for
a person's approval) and the budgets in `Agent.limits` and `Session.limits`. The API's serializers and the
models' `clean()` (which the admin's forms and `instance_update` run) both check them here."""

import math

TOOL_POLICY_MODES = ("auto", "ask")
MAX_TOOL_POLICY_ENTRIES = 200
MAX_TOOL_NAME_CHARS = 128

# Limit name -> JSON type of its value ("number" or "integer"), above 0; null means no limit.
AGENT_LIMITS = {"max_cost_usd_per_turn": "number", "max_tokens_per_turn": "integer"}
SESSION_LIMITS = {"max_cost_usd": "number", "max_tokens": "integer"}

_SHOWN_CHARS = 40  # a key quoted in a message is cut here, so a long bad key is not echoed back whole


def _shown(name) -> str:
    text = str(name)
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def tool_policy_errors(policy) -> list[str]:
    """What is wrong with a `tool_policy`; empty when nothing is. Tool names need not be tools the agent
    has: its capabilities may change after the policy is written, and a name no tool has never applies."""
    if not isinstance(policy, dict):
        return ['Must be an object mapping a tool name (or "*") to "auto" or "ask".']
    if len(policy) > MAX_TOOL_POLICY_ENTRIES:
        return [f"At most {MAX_TOOL_POLICY_ENTRIES} entries."]
    errors = []
    for name, mode in policy.items():
        if not isinstance(name, str) or not name:
            errors.append("A tool name must be a non-empty string.")
        elif len(name) > MAX_TOOL_NAME_CHARS:
            errors.append(f"{_shown(name)}: a tool name is at most {MAX_TOOL_NAME_CHARS} characters.")
        elif not isinstance(mode, str) or mode not in TOOL_POLICY_MODES:
            errors.append(f'{_shown(name)}: must be "auto" or "ask".')
    return errors


def _valid_limit(value, kind: str) -> bool:
    if isinstance(value, bool):  # an int to Python, not a number to JSON
        return False
    if isinstance(value, float) and kind == "number":
        return math.isfinite(value) and value > 0  # JSON has no NaN or Infinity; a Python caller might
    return isinstance(value, int) and value > 0


def limits_errors(limits, kinds: dict[str, str]) -> list[str]:
    """What is wrong with a `limits` object whose keys are `kinds` (AGENT_LIMITS or SESSION_LIMITS); empty when
    nothing is."""
    names = ", ".join(kinds)
    if not isinstance(limits, dict):
        return [f"Must be an object with the optional keys {names}."]
    errors = []
    if unknown := [name for name in limits if name not in kinds]:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""  # one short message, however many
        errors.append(f"Unknown limit {', '.join(_shown(name) for name in unknown[:3])}{more}; the limits are {names}.")
    for name, kind in kinds.items():
        value = limits.get(name)
        if value is not None and not _valid_limit(value, kind):
            what = "a whole number" if kind == "integer" else "a number"
            errors.append(f"{name}: must be {what} above 0, or null (no limit).")
    return errors
