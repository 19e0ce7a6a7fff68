from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from everruns.api.fields import StrictSerializer
from everruns.api.keys import api_key_create, api_key_revoke
from everruns.api.pagination import list_schema, page_parameters, paginated
from everruns.api.views import errors, validated
from everruns.models import ApiKey
from everruns.selectors import get_object


class ApiKeyInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=255)
    scope = serializers.ChoiceField(choices=ApiKey.Scope.choices, required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "scope", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The secret, shown this once.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


# `/v1/api-keys` and `/v1/api-keys/{key_id}` (admin scope).
class ApiKeyViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="api_keys_list",
        parameters=page_parameters(),
        responses={200: list_schema(ApiKeySerializer), **errors(400, 401, 403)},
    )
    def list(self, request):
        return paginated(request, ApiKey.objects.order_by("-id"), ApiKeySerializer)

    @extend_schema(
        operation_id="api_keys_create",
        request=ApiKeyInputSerializer,
        responses={201: ApiKeyCreatedSerializer, **errors(400, 401, 403, 415)},
    )
    def create(self, request):
        key, secret = api_key_create(**validated(ApiKeyInputSerializer, request.data))
        return Response({**ApiKeySerializer(key).data, "key": secret}, status=201)

    @extend_schema(operation_id="api_keys_revoke", responses={204: None, **errors(401, 403, 404)})
    def destroy(self, request, key_id):
        api_key_revoke(key=get_object(ApiKey.objects.filter(revoked_at__isnull=True), "API key not found", pk=key_id))
        return Response(status=204)
