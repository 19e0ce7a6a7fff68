from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from agents import selectors as agent_selectors
from agents.schedules import selectors, services
from agents.schedules.serializers import ScheduleInputSerializer, ScheduleRunSerializer, ScheduleSerializer
from everruns.api.auth import OPEN
from everruns.api.pagination import list_schema, page_parameters, paginated
from everruns.api.views import errors, validated


# `/v1/agents/{agent_id}/schedules` and `/v1/agents/{agent_id}/schedules/{schedule_id}`.
class ScheduleViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="schedules_list",
        parameters=page_parameters(),
        responses={200: list_schema(ScheduleSerializer), **errors(400, 404)},
    )
    def list(self, request, agent_id):
        agent_selectors.agent_get(agent_id=agent_id)
        return paginated(request, selectors.schedule_list(agent_id=agent_id), ScheduleSerializer)

    @extend_schema(
        operation_id="schedules_create",
        request=ScheduleInputSerializer,
        responses={201: ScheduleSerializer, **errors(400, 404, 409, 415)},
    )
    def create(self, request, agent_id):
        agent = agent_selectors.agent_get(agent_id=agent_id)
        data = validated(ScheduleInputSerializer, request.data)
        schedule = services.schedule_create(
            agent=agent, api_key_id=getattr(request, "principal", OPEN).turn_key_id, **data
        )
        return Response(ScheduleSerializer(schedule).data, status=201)

    @extend_schema(operation_id="schedules_get", responses={200: ScheduleSerializer, **errors(404)})
    def retrieve(self, request, agent_id, schedule_id):
        return Response(ScheduleSerializer(selectors.schedule_get(agent_id=agent_id, schedule_id=schedule_id)).data)

    @extend_schema(
        operation_id="schedules_update",
        request=ScheduleInputSerializer,
        responses={200: ScheduleSerializer, **errors(400, 404, 415)},
    )
    def partial_update(self, request, agent_id, schedule_id):
        schedule = selectors.schedule_get(agent_id=agent_id, schedule_id=schedule_id)
        data = validated(ScheduleInputSerializer, request.data, partial=True)
        return Response(ScheduleSerializer(services.schedule_update(schedule=schedule, data=data)).data)

    @extend_schema(operation_id="schedules_delete", responses={204: None, **errors(404)})
    def destroy(self, request, agent_id, schedule_id):
        services.schedule_delete(schedule=selectors.schedule_get(agent_id=agent_id, schedule_id=schedule_id))
        return Response(status=204)

    @extend_schema(
        operation_id="schedules_run", request=None, responses={202: ScheduleRunSerializer, **errors(404, 409)}
    )
    def run(self, request, agent_id, schedule_id):
        schedule = selectors.schedule_get(agent_id=agent_id, schedule_id=schedule_id)
        run = services.schedule_run_now(schedule=schedule, api_key_id=getattr(request, "principal", OPEN).turn_key_id)
        return Response(ScheduleRunSerializer(run).data, status=202)


# `/v1/agents/{agent_id}/schedules/{schedule_id}/runs`.
class ScheduleRunViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="schedule_runs_list",
        parameters=page_parameters(),
        responses={200: list_schema(ScheduleRunSerializer), **errors(400, 404)},
    )
    def list(self, request, agent_id, schedule_id):
        schedule = selectors.schedule_get(agent_id=agent_id, schedule_id=schedule_id)
        return paginated(request, selectors.run_list(schedule=schedule), ScheduleRunSerializer)
