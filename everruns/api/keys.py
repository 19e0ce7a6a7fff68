"""API keys: `evr_` + 40 random URL-safe characters. A key is looked up by its first 12 characters and
checked against a SHA-256 hash in constant time; the secret itself is never stored."""

import hashlib
import hmac
import secrets
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from everruns.core.errors import ValidationError
from everruns.models import ApiKey

KEY_PREFIX = "evr_"
LOOKUP_LENGTH = 12  # "evr_" + 8 characters: the indexed prefix
LAST_USED_EVERY = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, name: str, scope: str = ApiKey.Scope.AGENTS, expires_at=None) -> tuple[ApiKey, str]:
    """The new key and its secret (shown once)."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError("Invalid expiry", details={"expires_at": ["Must be in the future."]})
    secret = KEY_PREFIX + secrets.token_urlsafe(30)
    key = ApiKey.objects.create(
        name=name, scope=scope, prefix=secret[:LOOKUP_LENGTH], key_hash=_hash(secret), expires_at=expires_at
    )
    return key, secret


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _checked.clear()  # at once in this process; others within API_KEY_CACHE_SECONDS


# Keys found valid, by the hash of their secret: (when checked, key). A key's row is read again after
# API_KEY_CACHE_SECONDS, so a revocation reaches every process within that time; expiry is checked on each
# use. The look-up was ~30 % of a GET session's time (py-spy, README Performance).
_checked: dict[str, tuple[float, ApiKey]] = {}
_CHECKED_MAX = 10_000


def api_key_check(secret: str) -> ApiKey | None:
    """The live key for this secret, or None (unknown, wrong, revoked or expired)."""
    if not secret.startswith(KEY_PREFIX) or len(secret) < LOOKUP_LENGTH:
        return None
    digest = _hash(secret)
    hit = _checked.get(digest)
    if hit is not None and time.monotonic() - hit[0] < settings.API_KEY_CACHE_SECONDS:
        key = hit[1]
        return key if key.expires_at is None or key.expires_at > timezone.now() else None
    key = _look_up(secret, digest)
    if key is None:
        _checked.pop(digest, None)
    elif settings.API_KEY_CACHE_SECONDS > 0:
        if len(_checked) >= _CHECKED_MAX:
            _checked.clear()
        _checked[digest] = (time.monotonic(), key)
    return key


def api_key_live(key_id) -> bool:
    """Whether the key with this id is neither revoked nor expired (what a stream token it minted is checked
    against on each use: one indexed read, as often as a stream is opened)."""
    try:
        key_id = uuid.UUID(str(key_id))
    except ValueError:
        return False
    live = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    return ApiKey.objects.filter(live, pk=key_id, revoked_at__isnull=True).exists()


def _look_up(secret: str, digest: str) -> ApiKey | None:
    now = timezone.now()
    key = (
        ApiKey.objects.filter(prefix=secret[:LOOKUP_LENGTH], revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        # At most one write a minute per key, whatever the request rate (and one of several processes wins).
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
    return key
