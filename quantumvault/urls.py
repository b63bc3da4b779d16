"""URL configuration of the QuantumVault profit-share project: the Django admin and the intake
API (``/api/v1/``, OpenAPI at ``/api/v1/openapi.json``)."""

from django.contrib import admin
from django.urls import include, path

from profitshare.api import api
from profitshare.views import ops

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("", include("profitshare.urls")),
]
