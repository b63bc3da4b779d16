"""Operator endpoints (thin): ``/healthz`` and Prometheus ``/metrics``."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from profitshare.services import health, metrics


@never_cache
@require_GET
def healthz(request):
    """200 ``{"status": "ok", "checks": {...}}`` when the database, the broker and the RPC
    answer; 503 ``{"status": "unhealthy", "failed": [names], "checks": {...}}`` otherwise."""
    healthy, checks = health.health()
    failed = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ok" if healthy else "unhealthy", "failed": failed, "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@require_GET
def metrics_view(request):
    """The Prometheus text exposition (``metrics.render``)."""
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
