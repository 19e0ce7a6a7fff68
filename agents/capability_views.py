from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from agents import selectors, services
from agents.serializers import CapabilityIdsField
from everruns.api.fields import StrictSerializer
from everruns.api.pagination import envelope, list_schema
from everruns.api.views import errors, validated

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
        return Response(envelope(items, total=len(items), limit=len(items), offset=0))

    @extend_schema(operation_id="capabilities_get", responses={200: CAPABILITY, **errors(404)})
    def retrieve(self, request, capability_id):
        return Response(selectors.capability_get(capability_id=capability_id))


class AgentCapabilitiesInputSerializer(StrictSerializer):
    capabilities = CapabilityIdsField()


AGENT_CAPABILITIES = inline_serializer(
    name="AgentCapabilities",
    fields={
        "data": inline_serializer(
            name="AgentCapability",
            fields={"capability_id": serializers.CharField(), "position": serializers.IntegerField(min_value=0)},
            many=True,
        )
    },
)


def _agent_capabilities(agent) -> dict:
    return {"data": [{"capability_id": c, "position": i} for i, c in enumerate(agent.capabilities)]}


# `/v1/agents/{agent_id}/capabilities`: an agent's ordered capabilities as their own resource (upstream Everruns'
# route); the same list as the agent's `capabilities`.
class AgentCapabilityViewSet(viewsets.ViewSet):
    @extend_schema(operation_id="agent_capabilities_get", responses={200: AGENT_CAPABILITIES, **errors(404)})
    def retrieve(self, request, agent_id):
        return Response(_agent_capabilities(selectors.agent_get(agent_id=agent_id)))

    @extend_schema(
        operation_id="agent_capabilities_set",
        request=AgentCapabilitiesInputSerializer,
        description="Replaces the agent's capabilities with this ordered list (an unknown id is a 400).",
        responses={200: AGENT_CAPABILITIES, **errors(400, 404, 415)},
    )
    def update(self, request, agent_id):
        agent = selectors.agent_get(agent_id=agent_id)
        data = validated(AgentCapabilitiesInputSerializer, request.data)
        return Response(_agent_capabilities(services.agent_update(agent=agent, data=data)))
