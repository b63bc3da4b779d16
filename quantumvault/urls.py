"""URL configuration of the QuantumVault profit-share project: the Django admin and the intake
API (``/api/v1/``, OpenAPI at ``/api/v1/openapi.json``)."""

from django.contrib import admin
from django.urls import include, path

from profitshare.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("profitshare.urls")),
]
