"""Backoff of a transient LLM error: full jitter in [half, all] of base * 2^(attempt-1), Retry-After as a
floor, the max as a ceiling."""

import pytest

from runner.loop import retry_delay_ms

SAMPLES = 400


@pytest.fixture(autouse=True)
def backoff(settings):
    settings.LLM_RETRY_BASE_MS = 1000
    settings.LLM_RETRY_MAX_MS = 30000


def samples(attempt: int, retry_after: float | None = None) -> list[int]:
    return [retry_delay_ms(attempt, retry_after) for _ in range(SAMPLES)]


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 1000), (2, 2000), (3, 4000), (4, 8000), (5, 16000)])
def test_attempt_n_waits_between_half_and_all_of_base_times_two_to_the_n_minus_one(attempt, ceiling):
    delays = samples(attempt)
    assert all(ceiling // 2 <= d <= ceiling for d in delays)
    # Jitter spreads over the whole range (400 uniform draws miss a quarter of it with p = 2^-166).
    assert any(d < ceiling * 5 // 8 for d in delays) and any(d > ceiling * 7 // 8 for d in delays)


def test_a_delay_is_whole_milliseconds():
    assert all(type(d) is int for d in samples(2))


@pytest.mark.parametrize("attempt", [6, 7, 20])
def test_the_delay_never_exceeds_the_max(attempt):
    delays = samples(attempt)
    assert all(15000 <= d <= 30000 for d in delays)
    assert any(d < 20000 for d in delays)  # the jitter is of the capped ceiling


def test_the_base_and_the_max_come_from_settings(settings):
    settings.LLM_RETRY_BASE_MS = 100
    settings.LLM_RETRY_MAX_MS = 250
    assert all(50 <= d <= 100 for d in samples(1))
    assert all(125 <= d <= 250 for d in samples(3))


def test_retry_after_is_a_floor():
    assert samples(1, retry_after=7) == [7000] * SAMPLES
    assert samples(2, retry_after=2.5) == [2500] * SAMPLES


def test_a_short_retry_after_changes_nothing():
    delays = samples(3, retry_after=0.5)
    assert all(2000 <= d <= 4000 for d in delays) and len(set(delays)) > 1


def test_a_retry_after_beyond_the_max_is_capped():
    assert samples(1, retry_after=120) == [30000] * SAMPLES


def test_a_zero_or_missing_retry_after_is_no_floor():
    assert all(500 <= d <= 1000 for d in samples(1, retry_after=0))
    assert all(500 <= d <= 1000 for d in samples(1, retry_after=None))
