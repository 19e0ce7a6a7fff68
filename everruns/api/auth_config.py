"""`GET /v1/auth/config`: how a client signs in here, in upstream Everruns' shape. Open in every mode
(everruns.api.auth.OPEN_ROUTES): a client reads it before it has a key. Only API keys exist here: no password
sign-in, no OAuth."""

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

AUTH_CONFIG = inline_serializer(
    name="AuthConfig",
    fields={
        "auth_mode": serializers.ChoiceField(choices=["none", "api_key"]),
        "password_auth_enabled": serializers.BooleanField(),
        "oauth_providers": serializers.ListField(child=serializers.CharField()),
    },
)


class AuthConfigView(APIView):
    @extend_schema(operation_id="auth_config", responses={200: AUTH_CONFIG})
    def get(self, request):
        return Response({"auth_mode": settings.AUTH_MODE, "password_auth_enabled": False, "oauth_providers": []})
