from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import capabilities
from everruns.api.views import errors
from everruns.errors import NotFound

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
CAPABILITY_LIST = inline_serializer(
    name="CapabilityList",
    fields={
        "items": CAPABILITY.__class__(many=True),
        "total": serializers.IntegerField(),
        "limit": serializers.IntegerField(),
        "offset": serializers.IntegerField(),
    },
)


class CapabilityListView(APIView):
    @extend_schema(operation_id="capabilities_list", responses={200: CAPABILITY_LIST})
    def get(self, request):
        items = capabilities.all_info()
        return Response({"items": items, "total": len(items), "limit": len(items), "offset": 0})


class CapabilityDetailView(APIView):
    @extend_schema(operation_id="capabilities_get", responses={200: CAPABILITY, **errors(404)})
    def get(self, request, capability_id):
        info = capabilities.get_info(capability_id)
        if info is None:
            raise NotFound("Capability not found")
        return Response(info)
