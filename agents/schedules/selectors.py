from django.db.models import QuerySet

from agents.schedules.models import Schedule, ScheduleRun
from everruns.selectors import get_object


def schedule_get(*, agent_id, schedule_id) -> Schedule:
    return get_object(Schedule.objects.select_related("agent"), "Schedule not found", pk=schedule_id, agent_id=agent_id)


def schedule_list(*, agent_id) -> QuerySet[Schedule]:
    return Schedule.objects.filter(agent_id=agent_id).order_by("-id")


def run_list(*, schedule: Schedule) -> QuerySet[ScheduleRun]:
    """Newest first."""
    return ScheduleRun.objects.filter(schedule=schedule).order_by("-id")
