import redis
from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

import everruns

HEALTH = inline_serializer(
    name="Health",
    fields={
        "status": serializers.CharField(),
        "version": serializers.CharField(),
        "checks": serializers.DictField(),
        "auth_mode": serializers.ChoiceField(choices=["none", "api_key"]),
    },
)


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def check_broker() -> str:
    if not settings.REDIS_URL:
        return "ok"  # embedded: in-memory broker inside this process

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


class HealthView(APIView):
    @extend_schema(operation_id="health", responses={200: HEALTH, 503: HEALTH})
    def get(self, request):
        checks = {"database": check_database(), "broker": check_broker()}
        ok = all(v == "ok" for v in checks.values())
        body = {
            "status": "ok" if ok else "degraded",
            "version": everruns.__version__,
            "checks": checks,
            "auth_mode": settings.AUTH_MODE,  # what upstream Everruns clients read to know whether to send a key
        }
        return Response(body, status=200 if ok else 503)
