"""UUIDv7 ids: time-ordered, and strictly increasing within one millisecond (RFC 9562 method 3)."""

import functools
import operator
import uuid

import pytest

from everruns.core import ids

MS = 1_790_000_000_123  # a fixed millisecond (2026)


class Clock:
    """A settable clock for ids.time (only `time_ns` is used)."""

    def __init__(self, ms: int):
        self.ms = ms

    def time_ns(self) -> int:
        return self.ms * 1_000_000 + 999_999  # late in the millisecond: still that millisecond


@pytest.fixture
def clock(monkeypatch):
    """Fresh generator state on a fixed clock; the real state comes back after the test."""
    fixed = Clock(MS)
    monkeypatch.setattr(ids, "time", fixed)
    monkeypatch.setattr(ids, "_last_ms", 0)
    monkeypatch.setattr(ids, "_counter", 0)
    return fixed


def timestamp_ms(value: uuid.UUID) -> int:
    return value.int >> 80


def counter(value: uuid.UUID) -> int:
    return (value.int >> 64) & 0x0FFF


def test_an_id_is_version_7_with_the_rfc_variant_and_the_millisecond_in_front(clock):
    value = ids.uuid7()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert timestamp_ms(value) == MS


def test_ids_made_in_one_millisecond_strictly_increase_by_one_in_the_counter(clock):
    made = [ids.uuid7() for _ in range(1000)]
    assert all(timestamp_ms(v) == MS for v in made)
    counters = [counter(v) for v in made]
    assert counters == list(range(counters[0], counters[0] + 1000))
    assert made == sorted(made) and len(set(made)) == 1000


def test_the_first_counter_of_a_millisecond_leaves_room_to_count(clock):
    starts = set()
    for step in range(64):
        clock.ms = MS + step
        starts.add(counter(ids.uuid7()))
    assert max(starts) <= 0x01FF
    assert len(starts) > 1  # random, not a constant


def test_ids_sort_the_same_as_uuids_as_strings_and_as_bytes(clock):
    made = [ids.uuid7() for _ in range(300)]
    clock.ms += 1
    made += [ids.uuid7() for _ in range(300)]
    assert made == sorted(made)
    assert [str(v) for v in made] == sorted(str(v) for v in made)
    assert [v.bytes for v in made] == sorted(v.bytes for v in made)


def test_past_4096_ids_in_one_millisecond_the_next_millisecond_is_borrowed(clock):
    made = [ids.uuid7() for _ in range(5000)]
    assert made == sorted(made) and len(set(made)) == 5000
    own = [v for v in made if timestamp_ms(v) == MS]
    borrowed = made[len(own) :]
    assert all(timestamp_ms(v) == MS + 1 for v in borrowed)
    assert counter(own[-1]) == 0x0FFF  # the millisecond's counter ran full
    assert [counter(v) for v in borrowed] == list(range(len(borrowed)))  # the borrowed one counts from 0


def test_a_clock_that_steps_back_never_makes_a_smaller_id(clock):
    before = ids.uuid7()
    clock.ms = MS - 5_000
    after = ids.uuid7()
    assert after > before
    assert timestamp_ms(after) == MS


def test_a_new_millisecond_starts_a_new_counter(clock):
    [ids.uuid7() for _ in range(600)]
    clock.ms = MS + 1
    value = ids.uuid7()
    assert timestamp_ms(value) == MS + 1
    assert counter(value) <= 0x01FF


def test_the_random_tail_fills_all_62_bits_and_differs_between_ids(clock):
    tails = [ids.uuid7().int & ((1 << 62) - 1) for _ in range(200)]
    assert len(set(tails)) == 200
    # Every bit is set in some tail (a bit left out of 200 random draws has p = 2^-200).
    assert functools.reduce(operator.or_, tails) == (1 << 62) - 1


def test_ids_from_the_real_clock_increase_in_a_tight_loop():
    made = [ids.uuid7() for _ in range(20_000)]
    assert made == sorted(made) and len(set(made)) == len(made)
