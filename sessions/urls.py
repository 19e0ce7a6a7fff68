from django.urls import path

from sessions import fs_views, views

base = "agents/<uuid:agent_id>/sessions"
urlpatterns = [
    path(base, views.SessionListView.as_view()),
    path(f"{base}/<uuid:session_id>", views.SessionDetailView.as_view()),
    path(f"{base}/<uuid:session_id>/messages", views.MessageListView.as_view()),
    path(f"{base}/<uuid:session_id>/events", views.EventListView.as_view()),
    path(f"{base}/<uuid:session_id>/fs", fs_views.SessionFileRootView.as_view()),
    path(f"{base}/<uuid:session_id>/fs/", fs_views.SessionFileRootView.as_view()),
    path(f"{base}/<uuid:session_id>/fs/<path:path>", fs_views.SessionFileView.as_view()),
]
