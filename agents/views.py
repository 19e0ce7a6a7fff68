from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors, services
from agents.serializers import AgentInputSerializer, AgentSerializer
from everruns.api.pagination import list_schema, page_parameters, paginated
from everruns.api.views import errors, validated


class AgentListView(APIView):
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
    def get(self, request):
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
    def post(self, request):
        data = validated(AgentInputSerializer, request.data)
        agent = services.agent_create(**data)
        return Response(AgentSerializer(agent).data, status=201)


class AgentDetailView(APIView):
    @extend_schema(operation_id="agents_get", responses={200: AgentSerializer, **errors(404)})
    def get(self, request, agent_id):
        return Response(AgentSerializer(selectors.agent_get(agent_id=agent_id)).data)

    @extend_schema(
        operation_id="agents_update",
        request=AgentInputSerializer,
        responses={200: AgentSerializer, **errors(400, 404, 415)},
    )
    def patch(self, request, agent_id):
        agent = selectors.agent_get(agent_id=agent_id)
        data = validated(AgentInputSerializer, request.data, partial=True)
        return Response(AgentSerializer(services.agent_update(agent=agent, data=data)).data)

    @extend_schema(operation_id="agents_archive", responses={204: None, **errors(404)})
    def delete(self, request, agent_id):
        services.agent_archive(agent=selectors.agent_get(agent_id=agent_id))
        return Response(status=204)
