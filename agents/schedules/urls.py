from django.urls import path

from agents.schedules.views import ScheduleRunViewSet, ScheduleViewSet
from everruns.api.routes import detail_route, list_route

schedule = "agents/<uuid:agent_id>/schedules/<uuid:schedule_id>"
urlpatterns = [
    list_route("agents/<uuid:agent_id>/schedules", ScheduleViewSet),
    detail_route(schedule, ScheduleViewSet),
    path(f"{schedule}/run", ScheduleViewSet.as_view({"post": "run"})),
    list_route(f"{schedule}/runs", ScheduleRunViewSet),
]
