from django.urls import path

from everruns.debug import views

app_name = "debug"
session = "agents/<uuid:agent_id>/sessions/<uuid:session_id>/"
urlpatterns = [
    path("", views.agents_page, name="agents"),
    path("agents/<uuid:agent_id>/", views.agent_page, name="agent"),
    path(session, views.session_page, name="session"),
    path(f"{session}context/", views.context_page, name="context"),
    path(f"{session}webhooks/", views.deliveries_page, name="deliveries"),
    path("capabilities/", views.capabilities_page, name="capabilities"),
    path("providers/", views.providers_page, name="providers"),
]
