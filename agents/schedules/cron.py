"""Cron times in an IANA time zone (cronsim reads the 5 fields on local wall time, the way Debian cron does;
zoneinfo + tzdata give the zone's rules). Pure functions: no database."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError


class BadSchedule(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadSchedule("timezone", f"Unknown IANA time zone {name!r}.") from None


def check(expression: str, timezone: str) -> None:
    """BadSchedule (naming the field) unless `expression` is a valid 5-field cron and `timezone` a known zone."""
    tz = zone(timezone)
    if len(expression.split()) != 5:
        raise BadSchedule("cron", "A cron expression has 5 fields: minute hour day-of-month month day-of-week.")
    try:
        next(CronSim(expression, datetime.now(tz)))
    except (CronSimError, StopIteration) as exc:
        raise BadSchedule("cron", f"Invalid cron expression: {exc or 'no time ever matches'}.") from None


def next_after(expression: str, timezone: str, after: datetime) -> datetime:
    """The first time (UTC) strictly after `after` at which the cron matches on the zone's wall clock.

    A wall time that a spring-forward skips runs at the first minute after the gap (once); one that a fall-back
    repeats runs at its first occurrence only (cronsim, like Debian cron)."""
    times = CronSim(expression, after.astimezone(zone(timezone)))
    for local in times:
        due = local.astimezone(UTC)
        # cronsim walks local wall time: from inside a repeated hour it can name the hour's first pass, which is
        # before `after`; that time has had its run.
        if due > after:
            return due
    raise BadSchedule("cron", "no time ever matches")  # pragma: no cover - check() refuses such expressions
