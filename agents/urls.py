from django.urls import path

from agents.capability_views import AgentCapabilityViewSet, CapabilityViewSet
from agents.llm_views import LlmModelViewSet, LlmProviderModelViewSet, LlmProviderViewSet
from agents.mcp.views import McpServerViewSet
from agents.transfer_views import AgentExportView, AgentImportView
from agents.views import AgentViewSet
from everruns.api.routes import detail_route, list_route

urlpatterns = [
    list_route("agents", AgentViewSet),
    detail_route("agents/<uuid:agent_id>", AgentViewSet),
    path("agents/import", AgentImportView.as_view()),
    path("agents/<uuid:agent_id>/export", AgentExportView.as_view()),
    detail_route("agents/<uuid:agent_id>/capabilities", AgentCapabilityViewSet),
    list_route("capabilities", CapabilityViewSet),
    detail_route("capabilities/<str:capability_id>", CapabilityViewSet),
    list_route("llm-providers", LlmProviderViewSet),
    detail_route("llm-providers/<uuid:provider_id>", LlmProviderViewSet),
    list_route("llm-providers/<uuid:provider_id>/models", LlmProviderModelViewSet),
    list_route("llm-models", LlmModelViewSet),
    detail_route("llm-models/<uuid:model_id>", LlmModelViewSet),
    list_route("mcp-servers", McpServerViewSet),
    detail_route("mcp-servers/<uuid:server_id>", McpServerViewSet),
    path("mcp-servers/<uuid:server_id>/refresh", McpServerViewSet.as_view({"post": "refresh"})),
]
