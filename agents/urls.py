from django.urls import path

from agents import views

urlpatterns = [
    path("agents", views.AgentListView.as_view()),
    path("agents/<uuid:agent_id>", views.AgentDetailView.as_view()),
]
