from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from agents import selectors, services
from agents.serializers import AgentInputSerializer, AgentSerializer
from everruns.api.pagination import list_schema, page_parameters, paginated
from everruns.api.views import errors, validated


# `/v1/agents` and `/v1/agents/{agent_id}`.
class AgentViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="agents_list",
        parameters=[
            OpenApiParameter("status", str, enum=["active", "archived", "all"]),
            OpenApiParameter("tag", str),
            OpenApiParameter("search", str),
            *page_parameters(),
        ],
        responses={200: list_schema(AgentSerializer), **errors(400)},
    )
    def list(self, request):
        qs = selectors.agent_list(
            status=request.query_params.get("status"),
            tag=request.query_params.get("tag"),
            search=request.query_params.get("search"),
        )
        return paginated(request, qs, AgentSerializer)

    @extend_schema(
        operation_id="agents_create",
        request=AgentInputSerializer,
        responses={201: AgentSerializer, **errors(400, 415)},
    )
    def create(self, request):
        data = validated(AgentInputSerializer, request.data)
        agent = services.agent_create(**data)
        return Response(AgentSerializer(agent).data, status=201)

    @extend_schema(operation_id="agents_get", responses={200: AgentSerializer, **errors(404)})
    def retrieve(self, request, agent_id):
        return Response(AgentSerializer(selectors.agent_get(agent_id=agent_id)).data)

    @extend_schema(
        operation_id="agents_update",
        request=AgentInputSerializer,
        responses={200: AgentSerializer, **errors(400, 404, 415)},
    )
    def partial_update(self, request, agent_id):
        agent = selectors.agent_get(agent_id=agent_id)
        data = validated(AgentInputSerializer, request.data, partial=True)
        return Response(AgentSerializer(services.agent_update(agent=agent, data=data)).data)

    @extend_schema(operation_id="agents_archive", responses={204: None, **errors(404)})
    def destroy(self, request, agent_id):
        services.agent_archive(agent=selectors.agent_get(agent_id=agent_id))
        return Response(status=204)
