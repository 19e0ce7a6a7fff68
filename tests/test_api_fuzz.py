"""Property-based fuzzing of every documented operation (schemathesis): no input may produce a
server error, and responses must match the OpenAPI document."""

import json

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from everruns.api.keys import api_key_create

# The SSE variant of GET .../events never ends; its JSON variant is covered by the API tests. The chat front-ends'
# routes only stream, from the ASGI front (tests/e2e/test_frontends.py).
NOT_FUZZED = r"/events$|/ag-ui$|/chat$|/chat/stream$"
schema = schemathesis.openapi.from_wsgi("/api-doc/openapi.json", get_wsgi_application()).exclude(path_regex=NOT_FUZZED)


def _api_key_mode_schema():
    """The document as a server with AUTH_MODE=api_key serves it: every /v1 operation needs the bearer key and
    may answer 401, 403 and 429 (the suite itself runs with AUTH_MODE=none)."""
    with override_settings(AUTH_MODE="api_key"):
        document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    assert "ApiKey" in document["components"]["securitySchemes"]
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = get_wsgi_application()
    return loaded.exclude(path_regex=NOT_FUZZED)


api_key_schema = _api_key_mode_schema()


@pytest.fixture
def in_test_transaction(seeded, mcp_contained):
    """Keep the test's connection open across requests, as Django's test client does (and contact no fuzzed
    MCP server URL)."""

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_key(in_test_transaction, settings):
    """AUTH_MODE=api_key with an admin key (and no write limit: fuzzing writes a lot)."""
    settings.AUTH_MODE = "api_key"
    settings.WRITE_RATE_LIMIT = 0
    return api_key_create(name="fuzz", scope="admin")[1]


def excluded_checks(case) -> list:
    # Schema-valid input may still be refused on meaning (a model id that does not exist, a provider
    # type litellm does not know): a 400 there is right, so "valid data is accepted" is not checked.
    checks = [positive_data_acceptance]
    if case.operation.path == "/v1/agents/import":
        # Any text is an agent file (plain text is a system prompt), and schemathesis sends the non-string
        # bodies it means as invalid as their text: there is no invalid text/markdown body to refuse.
        checks.append(negative_data_rejection)
    return checks


@pytest.mark.usefixtures("in_test_transaction")
@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    case.call_and_validate(excluded_checks=excluded_checks(case))


@api_key_schema.parametrize()
@hypothesis_settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_api_key_mode_schema_with_an_admin_key(case, admin_key):
    """The api_key-mode document against an api_key-mode server, with a valid admin key; schemathesis also
    checks that each operation refuses the call without it (its ignored_auth check). Negative data is the
    other run's: here a case that means to leave the required Authorization header out gets it anyway."""
    excluded = [*excluded_checks(case), negative_data_rejection]
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_key}"}, excluded_checks=excluded)
