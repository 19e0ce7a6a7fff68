"""The rules of tool policies and limits for values only a Python caller (not JSON) can pass."""

import pytest

from agents import policies


@pytest.mark.parametrize("cost", [float("nan"), float("inf"), float("-inf")])
def test_a_cost_limit_must_be_a_finite_number(cost):
    assert policies.limits_errors({"max_cost_usd": cost}, policies.SESSION_LIMITS) == [
        "max_cost_usd: must be a number above 0, or null (no limit)."
    ]


def test_a_limit_may_be_any_size_and_an_integer_cost_is_a_number():
    assert policies.limits_errors({"max_tokens": 10**30, "max_cost_usd": 3}, policies.SESSION_LIMITS) == []


def test_a_tool_name_must_be_a_string():
    assert policies.tool_policy_errors({1: "ask", "add": "ask"}) == ["A tool name must be a non-empty string."]
