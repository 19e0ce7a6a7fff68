from django.urls import path

from agents import capability_views, views

urlpatterns = [
    path("agents", views.AgentListView.as_view()),
    path("agents/<uuid:agent_id>", views.AgentDetailView.as_view()),
    path("capabilities", capability_views.CapabilityListView.as_view()),
    path("capabilities/<str:capability_id>", capability_views.CapabilityDetailView.as_view()),
]
