"""The subscriber's pages: their subscriptions, and each one's trade history with the
creator's share deducted, under a banner when debts block withdrawal."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from profitshare.selectors import history, notices
from profitshare.selectors.debts import debt_state
from profitshare.services.guards import guard
from profitshare.tables import TradeTable
from profitshare.tasks import enqueue_iou_retry
from profitshare.views.common import wallet_required


def _own_subscription(wallet: str, subscription_id: str):
    sub = history.subscription_of(wallet, subscription_id)
    if sub is None:
        raise Http404("no such subscription")
    return sub


def _banner_context(sub) -> dict:
    """The banner's context: the guard's answer (without retrying) and whether a retry runs."""
    return {"subscription": sub, **debt_state(sub)}


@require_GET
@wallet_required
def subscriptions_page(request, wallet: str):
    """``/subscriber/``: the signed-in wallet's subscriptions."""
    return render(
        request, "profitshare/subscriber/list.html",
        {"wallet": wallet, "subscriptions": history.subscriptions_of(wallet)},
    )


@require_GET
@wallet_required
def trades_page(request, subscription_id: str, wallet: str):
    """``/subscriber/<id>/``: every close with PnL, the creator's share, what was paid (and
    its signature), what is owed and why, and net PnL; someone else's subscription is a 404."""
    sub = _own_subscription(wallet, subscription_id)
    page = history.trade_history(sub.pk, after=request.GET.get("after"), before=request.GET.get("before"))
    context = {
        "wallet": wallet,
        "page": page,
        "table": TradeTable(page["rows"]),
        "subscription": sub,
        "scheduled_terms": notices.scheduled_terms(sub),
        "summary": history.trade_summary(sub.pk),
        **debt_state(sub),
    }
    if request.htmx and request.htmx.target == "trades":
        return render(request, "profitshare/subscriber/_trades.html", context)
    return render(request, "profitshare/subscriber/trades.html", context)


@require_GET
@wallet_required
def banner(request, subscription_id: str, wallet: str):
    """The guard banner alone (htmx polls it while a retry runs)."""
    sub = _own_subscription(wallet, subscription_id)
    return render(request, "profitshare/subscriber/_banner.html", _banner_context(sub))


@require_POST
@wallet_required
def retry_debts(request, subscription_id: str, wallet: str):
    """Run the guard with retries: each open IOU of the subscription is claimed and its retry
    queued; the banner then shows what still blocks (and polls while retries run)."""
    sub = _own_subscription(wallet, subscription_id)
    guard(sub.subscription_id, retry=lambda iou_id: enqueue_iou_retry(iou_id, actor=f"subscriber:{wallet}"))
    if not request.htmx:
        return redirect("pages:subscriber-trades", subscription_id=sub.subscription_id)
    sub.refresh_from_db(fields=["status"])
    return render(request, "profitshare/subscriber/_banner.html", _banner_context(sub))
