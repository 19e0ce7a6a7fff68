from django.urls import path

from everruns.api.auth_config import AuthConfigView
from everruns.api.key_views import ApiKeyViewSet
from everruns.api.routes import detail_route, list_route

urlpatterns = [
    list_route("api-keys", ApiKeyViewSet),
    detail_route("api-keys/<uuid:key_id>", ApiKeyViewSet),
    path("auth/config", AuthConfigView.as_view()),
]
