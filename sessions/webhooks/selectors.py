from django.db.models import QuerySet

from everruns.selectors import get_object
from sessions.webhooks.models import Webhook, WebhookDelivery


def webhook_get(*, webhook_id) -> Webhook:
    return get_object(Webhook, "Webhook not found", pk=webhook_id)


def webhook_list() -> QuerySet[Webhook]:
    return Webhook.objects.order_by("-id")


def delivery_list(*, webhook: Webhook) -> QuerySet[WebhookDelivery]:
    """Newest first."""
    return WebhookDelivery.objects.filter(webhook=webhook).order_by("-id")


def delivery_get(*, webhook: Webhook, delivery_id) -> WebhookDelivery:
    return get_object(WebhookDelivery.objects.filter(webhook=webhook), "Delivery not found", pk=delivery_id)


def session_deliveries(*, session_id) -> QuerySet[WebhookDelivery]:
    """A session's deliveries, oldest first (the debug page)."""
    return WebhookDelivery.objects.filter(session_id=session_id).select_related("webhook").order_by("id")
