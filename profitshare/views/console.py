"""The admin console (Django staff only): pending debts (whom each owes) with retry now / void /
bulk retry, the platform treasury's fees, alerts with acknowledge, delinquent subscriptions,
engine health, and detail pages for an IOU and a distribution with their full audit trail.
Every action is a CSRF-protected POST whose outcome replaces the row in place under htmx (a
redirect with a message without it)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import RequestConfig
from django_tables2.paginators import LazyPaginator

from profitshare.selectors import admin_console
from profitshare.services.alerts import acknowledge_alert
from profitshare.services.errors import Conflict, InvalidInput, NotFound
from profitshare.services.ious import void_iou
from profitshare.tables import AlertTable, OpenIouTable
from profitshare.tasks import enqueue_iou_retries, enqueue_iou_retry
from profitshare.views.common import form_fields_html

DEBTS_PER_PAGE = 25


def _actor(request) -> str:
    return f"admin:{request.user.get_username()}"


def _row(request, iou_id: int, *, notice: str = "", error: str = "", status: int = 200):
    iou = admin_console.iou_row(iou_id)
    if iou is None:
        raise Http404("no such IOU")
    iou.notice, iou.error = notice, error  # shown in the row's actions cell
    table = OpenIouTable([iou], orderable=False, csrf_token=get_token(request))
    return render(request, "profitshare/console/_iou_row.html", {"row": table.render_row(iou)}, status=status)


def _debts_context(request, **extra) -> dict:
    filterset, qs = admin_console.open_ious(request.GET)
    table = OpenIouTable(qs, csrf_token=get_token(request))
    # bounded pagination: no COUNT over every open debt (the totals above carry the count)
    RequestConfig(request, paginate={"per_page": DEBTS_PER_PAGE, "paginator_class": LazyPaginator}).configure(table)
    params = request.GET.copy()
    for key in ("page", "sort"):
        params.pop(key, None)
    return {
        "table": table,
        "filter_form": filterset.form,
        "filter_fields": form_fields_html(filterset.form),
        "totals": admin_console.debt_totals(qs),
        "filter_params": params,
        **extra,
    }


@require_GET
@staff_member_required
def debts(request):
    """``/console/``: every open IOU with whom it owes, filtered, sorted and paginated, with
    totals by reason."""
    context = _debts_context(request)
    if request.htmx and request.htmx.target == "debts":
        return render(request, "profitshare/console/_debts.html", context)
    return render(request, "profitshare/console/debts.html", context)


@require_GET
@staff_member_required
def iou_row(request, iou_id: int):
    """One debts-table row (htmx polls it while a retry is processing)."""
    return _row(request, iou_id)


@require_POST
@staff_member_required
def retry_now(request, iou_id: int):
    """Claim the IOU and queue its retry (the engine's ``enqueue_iou_retry``)."""
    if admin_console.iou_row(iou_id) is None:
        raise Http404("no such IOU")
    queued = enqueue_iou_retry(iou_id, actor=_actor(request))
    notice = "Retry queued." if queued else ""
    error = "" if queued else "Not retryable now (paid, voided or already being retried)."
    if not request.htmx:
        (messages.success if queued else messages.error)(request, f"IOU #{iou_id}: {notice or error}")
        return redirect(request.POST.get("next") or "pages:console")
    return _row(request, iou_id, notice=notice, error=error)


@require_http_methods(["GET", "POST"])
@staff_member_required
def void(request, iou_id: int):
    """Void what remains of an IOU: a reason is required and so is confirmation (``confirm``:
    the htmx confirm dialog, or this page's form without JavaScript)."""
    detail = admin_console.iou_row(iou_id)
    if detail is None:
        raise Http404("no such IOU")
    reason = request.POST.get("reason", "").strip()
    if request.method == "GET" or (request.POST.get("confirm") != "yes" and reason):
        return render(request, "profitshare/console/void_confirm.html", {"iou": detail, "reason": reason})
    try:
        void_iou(iou_id, reason=reason, actor=_actor(request))
    except InvalidInput as exc:
        if request.htmx:
            return _row(request, iou_id, error=exc.message, status=422)
        return render(
            request, "profitshare/console/void_confirm.html", {"iou": detail, "reason": reason, "error": exc.message},
            status=422,
        )
    except Conflict as exc:
        if request.htmx:
            return _row(request, iou_id, error=str(exc), status=409)
        messages.error(request, str(exc))
        return redirect("pages:console-iou", iou_id=iou_id)
    if request.htmx:
        return _row(request, iou_id, notice="Voided.")
    messages.success(request, f"IOU #{iou_id} voided.")
    return redirect("pages:console-iou", iou_id=iou_id)


@require_POST
@staff_member_required
def bulk_retry(request):
    """Retry now every open or expired IOU of the filtered set (at most 200 at a time).

    Under htmx the debts section is rendered again in place, as the page it was posted from
    shows it (filters, sort and page from ``HX-Current-URL``), with the outcome on top and the
    queued rows polling until they settle; without JavaScript, a redirect to that page with
    the outcome as a message."""
    ids = admin_console.retry_candidates(request.POST)
    result = enqueue_iou_retries(ids, actor=_actor(request))
    summary = f"Bulk retry: {len(result['queued'])} queued, {len(result['skipped'])} skipped."
    if request.htmx:
        # the page's own query string (same origin, staff only; used to read, never to act)
        request.GET = QueryDict(urlsplit(request.htmx.current_url or "").query)
        context = _debts_context(request, bulk_result={**result, "summary": summary})
        return render(request, "profitshare/console/_debts.html", context)
    messages.info(request, summary)
    query = request.POST.copy()
    query.pop("csrfmiddlewaretoken", None)
    return redirect(f"{reverse('pages:console')}?{query.urlencode()}")


@require_GET
@staff_member_required
def iou_page(request, iou_id: int):
    """``/console/ious/<id>/``: one IOU, its distribution, attempts and audit trail."""
    detail = admin_console.iou_detail(iou_id)
    if detail is None:
        raise Http404("no such IOU")
    return render(request, "profitshare/console/iou.html", detail)


@require_GET
@staff_member_required
def distribution_page(request, distribution_id: int):
    """``/console/distributions/<id>/``: one distribution with attempts, IOUs and audit trail."""
    detail = admin_console.distribution_detail(distribution_id)
    if detail is None:
        raise Http404("no such distribution")
    return render(request, "profitshare/console/distribution.html", detail)


@require_GET
@staff_member_required
def treasury(request):
    """``/console/treasury/``: the platform treasury's legs (``QV_PLATFORM_TREASURY``): fees
    paid, owed, carried (and why) and voided; a note when no treasury is configured."""
    return render(request, "profitshare/console/treasury.html", {"treasury": admin_console.treasury()})


@require_GET
@staff_member_required
def alerts(request):
    """``/console/alerts/``: newest alerts (``?all=1`` includes acknowledged ones)."""
    include = request.GET.get("all") == "1"
    feed = admin_console.alerts_feed(include_acknowledged=include)
    table = AlertTable(feed["alerts"], csrf_token=get_token(request))
    return render(
        request, "profitshare/console/alerts.html", {**feed, "table": table, "include_acknowledged": include}
    )


@require_POST
@staff_member_required
def acknowledge(request, alert_id: int):
    """Acknowledge one alert; under htmx the alert's row is replaced in place."""
    try:
        alert = acknowledge_alert(alert_id, actor=_actor(request))
        error = ""
    except NotFound as exc:
        raise Http404("no such alert") from exc
    except Conflict as exc:
        alert, error = None, str(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("pages:console-alerts")
    if alert is None:
        alert = admin_console.alert(alert_id)
    table = AlertTable([alert], csrf_token=get_token(request), error=error)
    return render(request, "profitshare/console/_alert_row.html", {"row": table.render_row(alert)})


@require_GET
@staff_member_required
def delinquent(request):
    """``/console/delinquent/``: delinquent subscriptions, what they owe and moved out."""
    return render(
        request, "profitshare/console/delinquent.html",
        {"subscriptions": admin_console.delinquent_subscriptions()},
    )


@require_GET
@staff_member_required
def health(request):
    """``/console/health/``: django-q2 cluster, queue, failures, schedules, reconciliation."""
    return render(request, "profitshare/console/health.html", admin_console.engine_health())
