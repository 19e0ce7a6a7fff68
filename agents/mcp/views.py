from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from agents.mcp import selectors, services
from agents.mcp.serializers import McpServerInputSerializer, McpServerSerializer
from everruns.api.pagination import list_schema, page_parameters, paginated
from everruns.api.views import errors, validated


# `/v1/mcp-servers`, `/v1/mcp-servers/{server_id}` and its `refresh` (admin scope: everruns/api/auth.py).
class McpServerViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="mcp_servers_list",
        parameters=page_parameters(),
        responses={200: list_schema(McpServerSerializer), **errors(400)},
    )
    def list(self, request):
        return paginated(request, selectors.server_list(), McpServerSerializer)

    @extend_schema(
        operation_id="mcp_servers_create",
        description="Creates the server and lists its tools; an unreachable server is created with `last_error`.",
        request=McpServerInputSerializer,
        responses={201: McpServerSerializer, **errors(400, 409, 415)},
    )
    def create(self, request):
        server = services.server_create(**validated(McpServerInputSerializer, request.data))
        return Response(McpServerSerializer(server).data, status=201)

    @extend_schema(operation_id="mcp_servers_get", responses={200: McpServerSerializer, **errors(404)})
    def retrieve(self, request, server_id):
        return Response(McpServerSerializer(selectors.server_get(server_id=server_id)).data)

    @extend_schema(
        operation_id="mcp_servers_update",
        description="A new `url` without new `headers` drops the stored headers.",
        request=McpServerInputSerializer,
        responses={200: McpServerSerializer, **errors(400, 404, 409, 415)},
    )
    def partial_update(self, request, server_id):
        server = selectors.server_get(server_id=server_id)
        data = validated(McpServerInputSerializer, request.data, partial=True)
        return Response(McpServerSerializer(services.server_update(server=server, data=data)).data)

    @extend_schema(operation_id="mcp_servers_delete", responses={204: None, **errors(404)})
    def destroy(self, request, server_id):
        services.server_delete(server=selectors.server_get(server_id=server_id))
        return Response(status=204)

    @extend_schema(
        operation_id="mcp_servers_refresh",
        description="Lists the server's tools again (an unreachable server keeps its list and gets `last_error`).",
        request=None,
        responses={200: McpServerSerializer, **errors(404)},
    )
    def refresh(self, request, server_id):
        server = services.server_refresh(server=selectors.server_get(server_id=server_id))
        return Response(McpServerSerializer(server).data)
