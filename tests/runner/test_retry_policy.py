"""The retry policy as pure functions: how long to wait before the next attempt, and the provider's
Retry-After as litellm hands it over. No services needed."""

import random

import httpx
import pytest

from runner.llm.errors import _retry_after
from runner.loop import retry_delay_ms


@pytest.fixture
def policy(settings):
    settings.LLM_RETRY_BASE_MS = 100
    settings.LLM_RETRY_MAX_MS = 1000
    random.seed(7)  # the jitter is random; the bounds below hold for every draw


@pytest.mark.parametrize("attempt,low,high", [(1, 50, 100), (2, 100, 200), (3, 200, 400), (4, 400, 800)])
def test_backoff_doubles_per_attempt_with_jitter_in_the_upper_half(policy, attempt, low, high):
    delays = [retry_delay_ms(attempt) for _ in range(300)]
    assert low <= min(delays) and max(delays) <= high
    spread = high - low
    assert min(delays) < low + spread / 4 and max(delays) > high - spread / 4  # jittered over the whole range


def test_backoff_never_exceeds_the_cap(policy):
    assert {retry_delay_ms(10) for _ in range(100)} <= set(range(500, 1001))
    assert max(retry_delay_ms(10) for _ in range(100)) > 900


def test_retry_after_is_a_floor(policy, settings):
    assert retry_delay_ms(1, retry_after=0.7) == 700
    settings.LLM_RETRY_MAX_MS = 5000
    assert retry_delay_ms(1, retry_after=3) == 3000
    assert retry_delay_ms(1, retry_after=0.01) <= 100  # a short Retry-After leaves the backoff as it is


def test_the_cap_wins_over_a_long_retry_after(policy):
    assert retry_delay_ms(1, retry_after=120) == 1000


class Raised(Exception):
    """An exception carrying what litellm's exceptions may carry."""

    def __init__(self, response=None, litellm_response_headers=None):
        super().__init__("scripted")
        if response is not None:
            self.response = response
        if litellm_response_headers is not None:
            self.litellm_response_headers = litellm_response_headers


@pytest.mark.parametrize(
    "exc,seconds",
    [
        (Raised(response=httpx.Response(429, headers={"Retry-After": "2"})), 2.0),
        (Raised(response=httpx.Response(429, headers={"retry-after": "0.5"})), 0.5),
        (Raised(litellm_response_headers=httpx.Headers({"retry-after": "3"})), 3.0),
        (Raised(response=httpx.Response(429), litellm_response_headers={"retry-after": "4"}), 4.0),
        (Raised(response=httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})), None),
        (Raised(response=httpx.Response(429)), None),
        (Raised(), None),
    ],
    ids=["response", "lowercase", "litellm-headers", "fallback", "http-date", "absent", "no-response"],
)
def test_retry_after_header(exc, seconds):
    assert _retry_after(exc) == seconds
