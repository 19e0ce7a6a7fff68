"""Provider API keys, encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`).

SECRETS_ENCRYPTION_KEY encrypts; SECRETS_ENCRYPTION_KEY_PREVIOUS (comma-separated) still decrypts,
so keys can be rotated: set the new key, move the old one to _PREVIOUS, run
`manage.py rotate_secrets`, then drop the old one.
Every plaintext this process decrypts, and every provider key in its environment (KEY_ENV), is remembered
so that log lines and LLM error messages can redact it.
"""

import logging
import os
import threading

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from agents.provider_types import KEY_ENV

_known: set[str] = set()
_lock = threading.Lock()


class SecretsNotConfigured(Exception):
    pass


class SecretUnreadable(Exception):
    pass


def is_configured() -> bool:
    return bool(settings.SECRETS_ENCRYPTION_KEY)


def _fernet() -> MultiFernet:
    if not is_configured():
        raise SecretsNotConfigured("SECRETS_ENCRYPTION_KEY is not set")
    keys = [settings.SECRETS_ENCRYPTION_KEY, *settings.SECRETS_ENCRYPTION_KEY_PREVIOUS]
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def remember(plaintext: str) -> None:
    if plaintext and len(plaintext) >= 6:
        with _lock:
            _known.add(plaintext)


def remember_environment_keys() -> None:
    """The provider keys in the environment (OPENAI_API_KEY, ...): at start, and again whenever the runner may
    use them, so a key set later is redacted too."""
    for name in KEY_ENV.values():
        remember(os.environ.get(name, ""))


def encrypt(plaintext: str) -> str:
    remember(plaintext)
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        plaintext = _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("the stored key cannot be decrypted with the configured keys") from None
    remember(plaintext)
    return plaintext


def rotate(token: str) -> str:
    """Re-encrypt with the current key (readable with any configured key)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("the stored key cannot be decrypted with the configured keys") from None


def redact(text: str) -> str:
    with _lock:
        known = list(_known)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


class RedactSecretsFilter(logging.Filter):
    """Replaces any known provider key (decrypted, or from the environment) in a log record with [redacted]."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _known:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


remember_environment_keys()
