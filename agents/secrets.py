"""Provider API keys, encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`).

SECRETS_ENCRYPTION_KEY encrypts; SECRETS_ENCRYPTION_KEY_PREVIOUS (comma-separated) still decrypts,
so keys can be rotated: set the new key, move the old one to _PREVIOUS, run
`manage.py rotate_secrets`, then drop the old one.
Every plaintext this process decrypts, and every provider key in its environment (KEY_ENV), is remembered
so that log lines and LLM error messages can redact it.
"""

import logging
import os
import re
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


# A URL's user information (`scheme://user:password@host`), up to the last `@` of its authority.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#\s]*)@")


def mask_url_credentials(text: str) -> str:
    """`text` with the password of every URL in it masked (`redis://user:***@host`), and a user with no
    password too (`https://***@host`: a token in that place is a secret). A broker or database URL can carry
    one, and log lines quote URLs."""

    def masked(match: re.Match) -> str:
        user, colon, _password = match["userinfo"].partition(":")
        return f"{match['scheme']}{user}:***@" if colon else f"{match['scheme']}***@"

    return _URL_USERINFO.sub(masked, text) if "@" in text else text


def redact(text: str) -> str:
    """`text` without any known provider key and without credentials in URLs."""
    with _lock:
        known = list(_known)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return mask_url_credentials(text)


class RedactSecretsFilter(logging.Filter):
    """Replaces any known provider key (decrypted, or from the environment) in a log record with [redacted],
    and masks credentials in the URLs it quotes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            trace = logging.Formatter().formatException(record.exc_info)
            cleaned = redact(trace)
            if cleaned != trace:  # the record is shared by every handler: change it only when it must
                record.exc_text, record.exc_info = cleaned, None
        return True


remember_environment_keys()
