"""Cron times in a time zone: daylight-saving changes in Europe/Berlin and a half-hour offset in Asia/Kolkata."""

from datetime import UTC, datetime

import pytest

from agents.schedules.cron import BadSchedule, check, next_after


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def times(expression: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    found, at = [], start
    while (at := next_after(expression, zone, at)) < end:
        found.append(at)
    return found


def test_every_minute_in_utc_is_the_next_whole_minute():
    assert next_after("* * * * *", "UTC", utc(2026, 1, 1, 10, 0, 30)) == utc(2026, 1, 1, 10, 1)
    assert next_after("* * * * *", "UTC", utc(2026, 1, 1, 10, 1)) == utc(2026, 1, 1, 10, 2)  # strictly after


def test_kolkata_is_five_and_a_half_hours_ahead_of_utc():
    assert next_after("0 9 * * *", "Asia/Kolkata", utc(2026, 3, 1)) == utc(2026, 3, 1, 3, 30)
    assert next_after("30 0 * * *", "Asia/Kolkata", utc(2026, 3, 1, 12)) == utc(2026, 3, 1, 19, 0)


def test_berlin_spring_forward_a_skipped_time_fires_once_just_after_the_gap():
    # 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 does not exist that day.
    found = times("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28), utc(2026, 3, 31))
    assert found == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_berlin_fall_back_a_repeated_time_fires_once():
    # 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens at 00:30 and at 01:30 UTC.
    found = times("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24), utc(2026, 10, 27))
    assert found == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_from_inside_the_repeated_hour_the_first_pass_does_not_fire_again():
    after_second_pass_started = utc(2026, 10, 25, 1, 15)  # 02:15 CET, after 02:30 CEST had its run
    assert next_after("30 2 * * *", "Europe/Berlin", after_second_pass_started) == utc(2026, 10, 26, 1, 30)


def test_berlin_hourly_times_stay_on_the_hour_across_both_changes():
    spring = times("0 * * * *", "Europe/Berlin", utc(2026, 3, 28, 23), utc(2026, 3, 29, 3))
    assert spring == [utc(2026, 3, 29, h) for h in (0, 1, 2)]
    autumn = times("0 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))
    assert autumn == [utc(2026, 10, 25, h) for h in (0, 1, 2)]  # every real hour once, the repeated one too


@pytest.mark.parametrize(
    ("expression", "zone", "field"),
    [
        ("* * * *", "UTC", "cron"),
        ("0 0 * * * *", "UTC", "cron"),
        ("61 * * * *", "UTC", "cron"),
        ("0 0 31 2 *", "UTC", "cron"),
        ("nonsense", "UTC", "cron"),
        ("* * * * *", "Mars/Olympus", "timezone"),
        ("* * * * *", "", "timezone"),
        ("* * * * *", "../etc/passwd", "timezone"),
    ],
)
def test_bad_cron_or_zone_names_the_field(expression, zone, field):
    with pytest.raises(BadSchedule) as info:
        check(expression, zone)
    assert info.value.field == field


def test_good_ones_pass():
    check("*/15 9-17 * * 1-5", "Europe/Berlin")
    check("0 9 * * *", "Asia/Kolkata")
