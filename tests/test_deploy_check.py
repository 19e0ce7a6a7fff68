"""A TLS deployment behind a proxy is configured from the environment alone: with the settings
docs/security.md lists, Django's `check --deploy` has nothing to say; without them it warns."""

import os
import secrets
import subprocess
import sys

from tests.processes import ROOT

# The production environment that docs/security.md documents (host names are examples).
DOCUMENTED = {
    "ALLOWED_HOSTS": "everruns.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto,https",
    "CSRF_TRUSTED_ORIGINS": "https://everruns.example.com",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SECURE_SSL_REDIRECT": "true",
}


def check_deploy(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in DOCUMENTED and k != "AUTH_MODE"}
    base.update(
        {
            "DJANGO_SETTINGS_MODULE": "everruns.settings",
            "REDIS_URL": "redis://127.0.0.1:6379/15",  # the production shape: AUTH_MODE=api_key
            "SECRET_KEY": secrets.token_urlsafe(50),
        }
    )
    base.update(env)
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    return subprocess.run(command, cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_the_documented_production_environment():
    done = check_deploy(**DOCUMENTED)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_warns_without_them():
    done = check_deploy()
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr + done.stdout


def test_a_malformed_proxy_header_setting_refuses_to_start():
    done = check_deploy(**{**DOCUMENTED, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"})
    assert done.returncode != 0 and "SECURE_PROXY_SSL_HEADER must be" in done.stderr
