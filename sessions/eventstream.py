"""django-eventstream storage backed by our own event log: SSE ids and event sequences are one cursor."""

from django.db import close_old_connections, connection
from django_eventstream.event import Event as EsEvent
from django_eventstream.storage import StorageBase

from sessions import live
from sessions.log import event_to_dict
from sessions.selectors import event_list


def _session_id(channel: str) -> str:
    return channel.removeprefix("session-")


def read_events_after(session_id, after: int, limit: int) -> list[dict]:
    """One read of the log, then the connection is released so an open stream holds none."""
    close_old_connections()
    try:
        return [event_to_dict(e) for e in event_list(session_id=session_id, after=after)[:limit]]
    finally:
        connection.close()


class SessionEventStorage(StorageBase):
    def append_event(self, channel, event_type, data):
        raise NotImplementedError("session events are appended through sessions.log.append_event")

    def get_events(self, channel, last_id, limit=100):
        return [
            EsEvent(channel, e["type"], e, id=e["sequence"])
            for e in read_events_after(_session_id(channel), int(last_id), limit)
        ]

    def get_current_id(self, channel):
        from sessions.models import Session

        row = Session.objects.filter(pk=_session_id(channel)).values_list("last_event_sequence", flat=True).first()
        return row or 0


__all__ = ["SessionEventStorage", "read_events_after", "live"]
