"""schemathesis over the MCP server routes, with a real MCP server behind the one URL the fuzzing may reach:
no input is a server error, every response matches the OpenAPI document."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from agents.mcp import services as mcp_services
from tests import processes
from tests.test_api_fuzz import excluded_checks, in_test_transaction  # noqa: F401  (a fixture)

schema = schemathesis.openapi.from_wsgi("/api-doc/openapi.json", get_wsgi_application()).include(
    path_regex=r"^/v1/mcp-servers"
)


@pytest.fixture(scope="module")
def mcp_server(tmp_path_factory):
    server = processes.McpTestServer(tmp_path_factory.mktemp("mcp-fuzz"))
    yield server
    server.kill()


@pytest.fixture
def existing_server(db, mcp_contained, mcp_server):
    """One stored server on the real MCP server, so that fuzzed names and URLs meet a conflict and a listing."""
    mcp_contained.add(mcp_server.url)
    return mcp_services.server_create(name="fuzzed", url=mcp_server.url, timeout_seconds=5)


@pytest.mark.usefixtures("in_test_transaction", "existing_server")
@schema.parametrize()
@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_mcp_server_routes_conform_to_their_schema(case):
    case.call_and_validate(excluded_checks=excluded_checks(case))
