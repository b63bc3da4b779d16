"""The creator earnings dashboard: totals, where the shares went (referrals, the platform fee,
the creator's own leg), daily chart, per-bot and per-subscriber breakdown,
the filtered, keyset-paginated history (updated in place by htmx) and its CSV export."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from profitshare.money import format_bps, format_usdc
from profitshare.selectors import dashboard, leg_earnings, notices
from profitshare.tables import DistributionHistoryTable
from profitshare.views.common import history_context, render_fragment_or_page, wallet_required
from profitshare.views.csv_export import csv_response

CSV_HEADER = [
    "created_at_utc", "close_id", "bot_id", "subscription_id", "subscriber_wallet", "realized_pnl_usdc",
    "profit_share_percent", "policy", "share_usdc", "carry_in_usdc", "paid_usdc", "owed_usdc", "carried_usdc",
    "voided_usdc", "status", "paid_at_utc", "signatures",
]


def _history_context(request, creator_id: int, bots) -> dict:
    page = dashboard.distribution_history(
        creator_id, request.GET, after=request.GET.get("after"), before=request.GET.get("before"), bots=bots
    )
    return history_context(request, page, DistributionHistoryTable(page["rows"]))


@require_GET
@wallet_required
def dashboard_page(request, wallet: str):
    """``/creator/``: the signed-in creator's earnings (a wallet without bots sees a note)."""
    creator, bots = dashboard.creator_with_bots(wallet)
    if creator is None:
        return render(request, "profitshare/creator/no_bots.html", {"wallet": wallet})
    history = _history_context(request, creator.pk, bots)
    if request.htmx and request.htmx.target == "history-rows":
        return render(request, "profitshare/creator/_history_rows.html", history)
    sums = dashboard.creator_sums(creator.pk)
    daily = dashboard.daily_earnings(creator.pk, sums=sums)
    context = {
        "wallet": wallet,
        "creator": creator,
        "totals": dashboard.creator_totals(creator.pk, sums=sums, daily=daily),
        "split": leg_earnings.creator_split(creator.pk),
        "daily": daily,
        "chart": {
            "labels": [d["day"].isoformat() for d in daily],
            "paid": [format_usdc(d["paid"], grouping=False) for d in daily],
        },
        "by_bot": dashboard.earnings_by_bot(creator.pk, sums=sums, bots=bots),
        "by_subscriber": dashboard.earnings_by_subscriber(creator.pk, sums=sums, bots=bots),
        "telegram": notices.telegram_link(creator),
        **history,
    }
    return render_fragment_or_page(request, "profitshare/creator/dashboard.html", {}, context)


@require_GET
@wallet_required
def bot_page(request, bot_id: str, wallet: str):
    """``/creator/bots/<bot_id>/``: one of the creator's own bots; anyone else's is a 404."""
    creator, bots = dashboard.creator_with_bots(wallet)
    bot = next((b for b in bots if b.bot_id == bot_id), None)
    if bot is None:
        raise Http404("no such bot")
    sums = dashboard.creator_sums(creator.pk, bot_pk=bot.pk)
    context = {
        "wallet": wallet,
        "bot": bot,
        "by_subscriber": dashboard.earnings_by_subscriber(creator.pk, bot_pk=bot.pk, sums=sums, bots=bots),
        "row": next(r for r in dashboard.earnings_by_bot(creator.pk, sums=sums, bots=bots) if r["bot_id"] == bot.bot_id),
    }
    return render(request, "profitshare/creator/bot.html", context)


def _csv_rows(rows):
    for row in rows:
        yield [
            row["created_at"].isoformat(), row["close_ext_id"] or "", row["bot_ext_id"], row["subscription_ext_id"],
            row["subscriber_wallet"], format_usdc(row["realized_pnl"], grouping=False),
            format_bps(row["profit_share_bps"]).removesuffix(" %"), row["policy"],
            *(format_usdc(row[k], grouping=False) for k in ("share", "carry_in", "paid", "owed", "carried", "voided")),
            row["status"], row["paid_at"].isoformat() if row["paid_at"] else "", " ".join(row["signatures"]),
        ]


@require_GET
@wallet_required
def history_csv(request, wallet: str):
    """``/creator/history.csv``: the whole filtered history for tax records, streamed (ISO 8601
    UTC times, USDC amounts with 6 decimals, signatures)."""
    creator = dashboard.creator_by_address(wallet)
    if creator is None:
        raise Http404("no creator with this wallet")
    return csv_response(CSV_HEADER, _csv_rows(dashboard.history_for_export(creator.pk, request.GET)), name="earnings")
