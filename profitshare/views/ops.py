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
    """The Prometheus text exposition (``metrics.render``) for whoever ``metrics.scrape_allowed``
    lets in: the ``QV_METRICS_TOKEN`` bearer token (or staff) when one is set, else loopback or
    staff. 401 carries ``WWW-Authenticate: Bearer``; 403 a short reason."""
    user = getattr(request, "user", None)
    status = metrics.scrape_allowed(
        request.headers.get("Authorization", ""), request.META.get("REMOTE_ADDR", ""),
        bool(user is not None and user.is_authenticated and user.is_staff),
    )
    if status == 401:
        response = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if status == 403:
        return HttpResponse("metrics are served to loopback and staff only (set QV_METRICS_TOKEN to scrape remotely)\n",
                            status=403, content_type="text/plain")
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
