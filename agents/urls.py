from django.urls import path

from agents import capability_views, llm_views, views

urlpatterns = [
    path("agents", views.AgentListView.as_view()),
    path("agents/<uuid:agent_id>", views.AgentDetailView.as_view()),
    path("capabilities", capability_views.CapabilityListView.as_view()),
    path("capabilities/<str:capability_id>", capability_views.CapabilityDetailView.as_view()),
    path("llm-providers", llm_views.ProviderListView.as_view()),
    path("llm-providers/<uuid:provider_id>", llm_views.ProviderDetailView.as_view()),
    path("llm-providers/<uuid:provider_id>/models", llm_views.ProviderModelListView.as_view()),
    path("llm-models", llm_views.ModelListView.as_view()),
    path("llm-models/<uuid:model_id>", llm_views.ModelDetailView.as_view()),
]
