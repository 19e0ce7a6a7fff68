"""The one date format of the API: RFC 3339 in UTC with a `Z`, microseconds kept when there are any.

DRF's `DateTimeField` writes the same (settings: `USE_TZ`, `TIME_ZONE = "UTC"`), so serializers use it
as it is; this helper is for the payloads we build as dicts (the event log, session files).
tests/test_vocabulary.py holds the two to one format.
"""

import datetime


def rfc3339(value: datetime.datetime) -> str:
    """`2026-01-02T03:04:05.678901Z` (`...05Z` on a whole second)."""
    return value.astimezone(datetime.UTC).isoformat().removesuffix("+00:00") + "Z"
