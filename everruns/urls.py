from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from everruns.api.auth import DocumentAccess
from everruns.api.health import HealthView
from everruns.bench_views import PingView, StreamsView
from everruns.telemetry.metrics import metrics_view

urlpatterns = [
    path("health", HealthView.as_view()),
    path("metrics", metrics_view),
    path("api-doc/openapi.json", SpectacularJSONAPIView.as_view(permission_classes=[DocumentAccess]), name="openapi"),
    path("swagger-ui/", SpectacularSwaggerView.as_view(url_name="openapi", permission_classes=[DocumentAccess])),
    path("admin/", admin.site.urls),
    path("debug", RedirectView.as_view(url="/debug/")),
    path("debug/", include("everruns.debug.urls")),
    # Sessions first: their routes are the hot ones (a request tries the patterns in order), and no agent
    # route starts with `agents/<id>/sessions` or `agents/<id>/ag-ui`.
    path("v1/", include("sessions.urls")),
    path("v1/", include("agents.urls")),
    path("v1/", include("agents.schedules.urls")),
    path("v1/", include("everruns.api.urls")),
    path("v1/", include("sessions.webhooks.urls")),
]
if settings.BENCH_ROUTES:
    urlpatterns += [path("bench/ping", PingView.as_view()), path("bench/streams", StreamsView.as_view())]

handler400 = "everruns.api.errors.handler400"
handler403 = "everruns.api.errors.handler403"
handler404 = "everruns.api.errors.handler404"
handler500 = "everruns.api.errors.handler500"
