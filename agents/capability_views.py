from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from agents import selectors
from everruns.api.pagination import list_schema
from everruns.api.views import errors

TOOL = inline_serializer(
    name="Tool",
    fields={
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "parameters": serializers.DictField(),
    },
)
CAPABILITY = inline_serializer(
    name="Capability",
    fields={
        "id": serializers.CharField(),
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "status": serializers.CharField(),
        "category": serializers.CharField(),
        "system_prompt": serializers.CharField(allow_null=True),
        "tools": TOOL.__class__(many=True),
    },
)


# `/v1/capabilities` and `/v1/capabilities/{capability_id}`: the catalogue, read-only and unpaginated.
class CapabilityViewSet(viewsets.ViewSet):
    @extend_schema(operation_id="capabilities_list", responses={200: list_schema(CAPABILITY.__class__)})
    def list(self, request):
        items = selectors.capability_list()
        return Response({"items": items, "total": len(items), "limit": len(items), "offset": 0})

    @extend_schema(operation_id="capabilities_get", responses={200: CAPABILITY, **errors(404)})
    def retrieve(self, request, capability_id):
        return Response(selectors.capability_get(capability_id=capability_id))
