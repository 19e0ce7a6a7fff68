from django.urls import path

from everruns.api.routes import detail_route, list_route
from sessions.webhooks.views import WebhookDeliveryViewSet, WebhookViewSet

webhook = "webhooks/<uuid:webhook_id>"
urlpatterns = [
    list_route("webhooks", WebhookViewSet),
    detail_route(webhook, WebhookViewSet),
    path(f"{webhook}/rotate-secret", WebhookViewSet.as_view({"post": "rotate_secret"})),
    list_route(f"{webhook}/deliveries", WebhookDeliveryViewSet),
    path(f"{webhook}/deliveries/<uuid:delivery_id>/retry", WebhookDeliveryViewSet.as_view({"post": "retry"})),
]
