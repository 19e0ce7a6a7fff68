"""Webhook actions: create (the secret is shown once), change, delete, rotate the secret, retry a delivery."""

import base64
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from everruns.core import netguard
from everruns.core.errors import ValidationError
from everruns.services import full_clean, instance_update
from sessions.webhooks import outbox
from sessions.webhooks.models import Webhook, WebhookDelivery

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
# After a rotation the old secret signs too, for receivers that have not switched yet.
ROTATION_OVERLAP = timedelta(hours=24)
WEBHOOK_FIELDS = ["url", "events", "agent_id", "description", "enabled"]


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def url_check(url: str) -> None:
    """A target the workers may send to: public (everruns/core/netguard.py) unless WEBHOOK_ALLOWED_HOSTS lists it."""
    try:
        netguard.check_url(url, settings.WEBHOOK_ALLOWED_HOSTS)
    except netguard.RefusedAddress as exc:
        raise ValidationError("Webhook URL refused", details={"url": [str(exc)]}) from None


def webhook_create(
    *, url: str, events: list | None = None, agent_id=None, description: str | None = None, enabled: bool = True
) -> Webhook:
    url_check(url)
    webhook = Webhook(url=url, agent_id=agent_id, description=description, enabled=enabled, secret=secret_new())
    if events is not None:
        webhook.events = events
    full_clean(webhook)
    webhook.save()
    return webhook


def webhook_update(*, webhook: Webhook, data: dict) -> Webhook:
    if "url" in data:
        url_check(data["url"])
    instance_update(webhook, fields=WEBHOOK_FIELDS, data=data)
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


def webhook_rotate_secret(*, webhook: Webhook) -> Webhook:
    """A new secret; the current one keeps signing (a second signature) for ROTATION_OVERLAP."""
    with transaction.atomic():
        locked = Webhook.objects.select_for_update().get(pk=webhook.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
        locked.secret = secret_new()
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return locked


def signing_secrets(webhook: Webhook) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one within its overlap."""
    current = [webhook.secret]
    expires = webhook.previous_secret_expires_at
    if webhook.previous_secret and expires and expires > timezone.now():
        current.append(webhook.previous_secret)
    return current


def delivery_retry(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send again now (a failed delivery gets one more attempt; a delivered one is sent again, same id)."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now()
        )
        outbox.wake_after_commit([str(delivery.pk)])
    delivery.refresh_from_db()
    return delivery
