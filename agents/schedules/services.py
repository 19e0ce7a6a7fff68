"""Schedule actions: create, change, delete, run now, and fire the ones that are due.

Exactly once per due time, however many schedulers run: a scheduler takes a due schedule's row with
`FOR UPDATE SKIP LOCKED` (another scheduler passes over it), records the run under a unique key (schedule, due
time), posts the message and moves `next_run_at` past now, all in one transaction. A crash before the commit
leaves the time due (the next tick fires it); after it, the time is gone. Times missed while nothing ran fire
once: the run is for the oldest missed time, and the next one is computed from now."""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent
from agents.schedules import cron
from agents.schedules.models import Schedule, ScheduleRun
from everruns.core.dates import rfc3339
from everruns.core.errors import AppError, Conflict, TooManyRequests, ValidationError
from everruns.services import instance_update
from sessions.models import Session, Turn
from sessions.services import message_post, session_create

logger = logging.getLogger(__name__)

SCHEDULE_FIELDS = ["cron", "timezone", "message", "session_id", "enabled", "overlap"]
FIRE_LIMIT = 100  # schedules fired per tick of one scheduler (the rest on the next tick)


def _checked(*, agent: Agent, cron_expression: str, zone: str, session_id) -> None:
    try:
        cron.check(cron_expression, zone)
    except cron.BadSchedule as exc:
        raise ValidationError("Invalid schedule", details={exc.field: [str(exc)]}) from None
    if session_id is not None and not Session.objects.filter(pk=session_id, agent_id=agent.pk).exists():
        raise ValidationError("Unknown session", details={"session_id": [f"No session {session_id} on this agent."]})


def _next_run(schedule: Schedule, after: datetime) -> datetime | None:
    return cron.next_after(schedule.cron, schedule.timezone, after) if schedule.enabled else None


def schedule_create(
    *,
    agent: Agent,
    cron: str,
    message: dict,
    timezone: str = "UTC",
    session_id=None,
    enabled: bool = True,
    overlap: str = Schedule.Overlap.SKIP,
    api_key_id: str | None = None,
) -> Schedule:
    """`api_key_id`: the creating caller's key, if it is capped (MAX_TURNS_PER_KEY); the turns of the schedule's due
    times count against it."""
    if agent.status == Agent.Status.ARCHIVED:
        raise Conflict("Agent is archived; it takes no new schedules")
    _checked(agent=agent, cron_expression=cron, zone=timezone, session_id=session_id)
    schedule = Schedule(
        agent=agent,
        cron=cron,
        timezone=timezone,
        message=message,
        session_id=session_id,
        enabled=enabled,
        overlap=overlap,
        api_key_id=api_key_id or "",
    )
    schedule.next_run_at = _next_run(schedule, now())
    schedule.save()
    return schedule


def schedule_update(*, schedule: Schedule, data: dict) -> Schedule:
    merged = {name: data.get(name, getattr(schedule, name)) for name in ("cron", "timezone", "session_id")}
    _checked(
        agent=schedule.agent, cron_expression=merged["cron"], zone=merged["timezone"], session_id=merged["session_id"]
    )
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        timing = {"cron", "timezone", "enabled"} & {name for name in data if data[name] != getattr(locked, name)}
        instance_update(locked, fields=SCHEDULE_FIELDS, data=data)
        if timing:  # a new rule, or enabled again: the next time from now (times missed while disabled never fire)
            locked.next_run_at = _next_run(locked, now())
            locked.save(update_fields=["next_run_at"])
    return locked


def schedule_delete(*, schedule: Schedule) -> None:
    schedule.delete()


def now() -> datetime:
    return timezone.now()


def _previous_run_open(schedule: Schedule, run: ScheduleRun) -> bool:
    """The session of the schedule's newest started run still has a turn open (running, queued or waiting)."""
    session_id = schedule.session_id or (
        ScheduleRun.objects.filter(schedule=schedule, status=ScheduleRun.Status.STARTED)
        .exclude(pk=run.pk)
        .order_by("-id")
        .values_list("session_id", flat=True)
        .first()
    )
    return session_id is not None and Turn.objects.filter(session_id=session_id, status__in=Turn.OPEN).exists()


def _post(schedule: Schedule, scheduled_for: datetime, *, api_key_id: str | None) -> tuple[Session, object]:
    session = schedule.session
    if session is None:
        title = f"Schedule {schedule.cron} ({schedule.timezone}) at {rfc3339(scheduled_for)}"
        session = session_create(agent=schedule.agent, title=title[:255])
    message, _ = message_post(
        session=session,
        content=schedule.message["content"],
        metadata={"schedule_id": str(schedule.pk)},
        api_key_id=api_key_id,
    )
    return session, message


def _fire(schedule: Schedule, scheduled_for: datetime, *, manual: bool, api_key_id: str | None) -> ScheduleRun | None:
    """One run of `schedule` (its row locked by the caller's transaction) for `scheduled_for`, its turn counted
    against `api_key_id`; None when another scheduler already recorded this due time. The run's row comes first, so
    a taken time posts nothing. A manual run whose key is at its cap raises TooManyRequests (the caller's 429)."""
    run = ScheduleRun(schedule=schedule, scheduled_for=scheduled_for, manual=manual, status=ScheduleRun.Status.STARTED)
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:
        return None
    if schedule.overlap == Schedule.Overlap.SKIP and _previous_run_open(schedule, run):
        run.status = ScheduleRun.Status.SKIPPED
        run.error = {"code": "overlap", "message": "The previous run's turn is still open."}
    else:
        try:
            with transaction.atomic():
                session, message = _post(schedule, scheduled_for, api_key_id=api_key_id)
            run.session_id, run.message_id = session.pk, message.pk
        except AppError as exc:  # archived agent, a per-key cap, a deleted session: the run failed, the time passed
            if manual and isinstance(exc, TooManyRequests):
                raise  # the caller's own key: refused as its message would be, and its transaction stores nothing
            run.status, run.error = ScheduleRun.Status.FAILED, {"code": exc.code, "message": exc.message}
    run.save(update_fields=["status", "error", "session_id", "message_id"])
    return run


def schedule_run_now(*, schedule: Schedule, api_key_id: str | None = None) -> ScheduleRun:
    """A manual run, now (a disabled schedule too); overlap applies as for a due time. Its turn counts against
    `api_key_id`, the caller's key (MAX_TURNS_PER_KEY): at its cap, TooManyRequests and nothing is stored."""
    with transaction.atomic():
        locked = Schedule.objects.select_for_update(of=("self",)).select_related("agent", "session").get(pk=schedule.pk)
        run = _fire(locked, now(), manual=True, api_key_id=api_key_id)
        if run is None:
            # No unique key covers manual runs, so their row is not expected to collide; if it ever does, a clear
            # refusal rather than a run that was never stored.
            raise Conflict("The run could not be recorded; try again")
        Schedule.objects.filter(pk=locked.pk).update(last_run_at=run.created_at)
    return run


def schedules_fire_due(*, now: datetime | None = None, limit: int = FIRE_LIMIT) -> list[ScheduleRun]:
    """Fire enabled schedules whose next time has come (at most `limit` per call), each in its own transaction;
    returns the runs this call made."""
    runs = []
    for _ in range(limit):
        fired, run = _fire_next_due(now or timezone.now())
        if not fired:
            break
        if run is not None:
            runs.append(run)
    return runs


def _fire_next_due(now: datetime) -> tuple[bool, ScheduleRun | None]:
    """(whether a due schedule was found, its run or None if its time was taken already)."""
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("agent", "session")
            .filter(enabled=True, next_run_at__lte=now)
            .order_by("next_run_at")
            .first()
        )
        if schedule is None:
            return False, None
        due = schedule.next_run_at
        run = _fire(schedule, due, manual=False, api_key_id=schedule.api_key_id or None)
        Schedule.objects.filter(pk=schedule.pk).update(
            next_run_at=cron.next_after(schedule.cron, schedule.timezone, max(now, due)),
            last_run_at=now if run is not None else schedule.last_run_at,
        )
    logger.info("schedule %s, due %s: %s", schedule.pk, rfc3339(due), run.status if run else "recorded already")
    return True, run
