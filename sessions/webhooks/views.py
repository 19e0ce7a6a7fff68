from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from everruns.api.pagination import list_schema, page_parameters, paginated
from everruns.api.views import errors, validated
from sessions.webhooks import selectors, services
from sessions.webhooks.serializers import (
    WebhookDeliverySerializer,
    WebhookInputSerializer,
    WebhookSerializer,
    WebhookWithSecretSerializer,
)


def _with_secret(webhook) -> dict:
    return {**WebhookSerializer(webhook).data, "secret": webhook.secret}


# `/v1/webhooks` and `/v1/webhooks/{webhook_id}` (admin scope).
class WebhookViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="webhooks_list",
        parameters=page_parameters(),
        responses={200: list_schema(WebhookSerializer), **errors(400, 401, 403)},
    )
    def list(self, request):
        return paginated(request, selectors.webhook_list(), WebhookSerializer)

    @extend_schema(
        operation_id="webhooks_create",
        request=WebhookInputSerializer,
        responses={201: WebhookWithSecretSerializer, **errors(400, 401, 403, 415)},
    )
    def create(self, request):
        webhook = services.webhook_create(**validated(WebhookInputSerializer, request.data))
        return Response(_with_secret(webhook), status=201)

    @extend_schema(operation_id="webhooks_get", responses={200: WebhookSerializer, **errors(401, 403, 404)})
    def retrieve(self, request, webhook_id):
        return Response(WebhookSerializer(selectors.webhook_get(webhook_id=webhook_id)).data)

    @extend_schema(
        operation_id="webhooks_update",
        request=WebhookInputSerializer,
        responses={200: WebhookSerializer, **errors(400, 401, 403, 404, 415)},
    )
    def partial_update(self, request, webhook_id):
        webhook = selectors.webhook_get(webhook_id=webhook_id)
        data = validated(WebhookInputSerializer, request.data, partial=True)
        return Response(WebhookSerializer(services.webhook_update(webhook=webhook, data=data)).data)

    @extend_schema(operation_id="webhooks_delete", responses={204: None, **errors(401, 403, 404)})
    def destroy(self, request, webhook_id):
        services.webhook_delete(webhook=selectors.webhook_get(webhook_id=webhook_id))
        return Response(status=204)

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        request=None,
        responses={200: WebhookWithSecretSerializer, **errors(401, 403, 404)},
    )
    def rotate_secret(self, request, webhook_id):
        webhook = services.webhook_rotate_secret(webhook=selectors.webhook_get(webhook_id=webhook_id))
        return Response(_with_secret(webhook))


# `/v1/webhooks/{webhook_id}/deliveries` (admin scope).
class WebhookDeliveryViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="webhook_deliveries_list",
        parameters=page_parameters(),
        responses={200: list_schema(WebhookDeliverySerializer), **errors(400, 401, 403, 404)},
    )
    def list(self, request, webhook_id):
        webhook = selectors.webhook_get(webhook_id=webhook_id)
        return paginated(request, selectors.delivery_list(webhook=webhook), WebhookDeliverySerializer)

    @extend_schema(
        operation_id="webhook_deliveries_retry",
        request=None,
        responses={202: WebhookDeliverySerializer, **errors(401, 403, 404)},
    )
    def retry(self, request, webhook_id, delivery_id):
        webhook = selectors.webhook_get(webhook_id=webhook_id)
        delivery = services.delivery_retry(delivery=selectors.delivery_get(webhook=webhook, delivery_id=delivery_id))
        return Response(WebhookDeliverySerializer(delivery).data, status=202)
