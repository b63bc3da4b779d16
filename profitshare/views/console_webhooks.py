"""The console's webhook deliveries (Django staff only): the list with filters, and
redelivery of one delivery or of the filtered set (htmx replaces the row or the section in
place; without JavaScript a redirect with a message)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig
from django_tables2.paginators import LazyPaginator

from profitshare.selectors import webhooks as selectors
from profitshare.services.webhook_delivery import redeliver
from profitshare.tables import WebhookDeliveryTable
from profitshare.views.common import form_fields_html
from profitshare.views.console import _actor

PER_PAGE = 50


def _context(request, **extra) -> dict:
    filterset, qs = selectors.deliveries(request.GET)
    table = WebhookDeliveryTable(qs, csrf_token=get_token(request))
    RequestConfig(request, paginate={"per_page": PER_PAGE, "paginator_class": LazyPaginator}).configure(table)
    params = request.GET.copy()
    params.pop("page", None)
    return {
        "table": table, "filter_fields": form_fields_html(filterset.form), "filter_params": params,
        "counts": selectors.status_counts(qs), **extra,
    }


@require_GET
@staff_member_required
def deliveries(request):
    """``/console/webhooks/``: deliveries newest first (filters: status, event, endpoint,
    subscription), with counts by status."""
    context = _context(request)
    if request.htmx and request.htmx.target == "deliveries":
        return render(request, "profitshare/console/_webhooks.html", context)
    return render(request, "profitshare/console/webhooks.html", context)


@require_POST
@staff_member_required
def redeliver_one(request, delivery_id: int):
    """Make one delivery due again at once (``webhook_delivery.redeliver``)."""
    if selectors.delivery(delivery_id) is None:
        raise Http404("no such delivery")
    done = redeliver([delivery_id], actor=_actor(request))
    notice = "Redelivery queued." if done else ""
    error = "" if done else "Being sent right now; try again in a moment."
    if not request.htmx:
        (messages.success if done else messages.error)(request, f"Delivery #{delivery_id}: {notice or error}")
        return redirect("pages:console-webhooks")
    row = selectors.delivery(delivery_id)
    row.notice, row.error = notice, error
    table = WebhookDeliveryTable([row], csrf_token=get_token(request))
    return render(request, "profitshare/_table_row.html", {"row": table.render_row(row)}, status=200 if done else 409)


@require_POST
@staff_member_required
def redeliver_filtered(request):
    """Redeliver every delivery of the filtered set (at most 200 at a time, oldest first).
    Under htmx the section comes back as the page showed it (``HX-Current-URL``) with the
    outcome on top."""
    ids = selectors.redelivery_candidates(request.POST)
    done = redeliver(ids, actor=_actor(request))
    summary = f"Redelivery: {len(done)} queued, {len(ids) - len(done)} skipped (being sent)."
    if request.htmx:
        request.GET = QueryDict(urlsplit(request.htmx.current_url or "").query)
        return render(request, "profitshare/console/_webhooks.html", _context(request, summary=summary))
    messages.info(request, summary)
    query = request.POST.copy()
    query.pop("csrfmiddlewaretoken", None)
    return redirect(f"{reverse('pages:console-webhooks')}?{query.urlencode()}")
