"""``/earnings/``: what a signed-in wallet earned in every role it is paid a leg of a split share
(the creator's own leg, the platform fee, referral levels 1-3): totals per role, the last 30
days, the filtered, keyset-paginated history of its legs (updated in place by htmx) and its CSV
export. Any wallet signed in with Sign-In With Solana may open it; one that never earned a leg
sees a note."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from profitshare.money import format_bps, format_usdc
from profitshare.selectors import leg_earnings
from profitshare.tables import LegHistoryTable
from profitshare.views.common import history_context, wallet_required
from profitshare.views.csv_export import csv_response

CSV_HEADER = [
    "created_at_utc",
    "distribution_id",
    "close_id",
    "bot_id",
    "bot_name",
    "role",
    "rate_percent",
    "amount_usdc",
    "carry_in_usdc",
    "paid_usdc",
    "owed_usdc",
    "carried_usdc",
    "voided_usdc",
    "status",
    "paid_at_utc",
    "signatures",
]


def _history_context(request, wallet: str) -> dict:
    page = leg_earnings.leg_history(
        wallet, request.GET, after=request.GET.get("after"), before=request.GET.get("before")
    )
    return history_context(request, page, LegHistoryTable(page["rows"]))


def _chart(daily: list[dict], roles: list[leg_earnings.RoleTotals]) -> dict:
    """The chart's data: the days, and one series of paid USDC per role (stacked)."""
    return {
        "labels": [d["day"].isoformat() for d in daily],
        "datasets": [
            {
                "label": t.label,
                "data": [format_usdc(d["by_role"].get(t.role, 0), grouping=False) for d in daily],
            }
            for t in roles
        ],
    }


@require_GET
@wallet_required
def earnings_page(request, wallet: str):
    """``/earnings/``: the signed-in wallet's legs. An htmx request aimed at ``legs-rows`` gets
    the history rows only."""
    history = _history_context(request, wallet)
    if request.htmx and request.htmx.target == "legs-rows":
        return render(request, "profitshare/earnings/_history_rows.html", history)
    roles = leg_earnings.role_totals(wallet)
    if not roles:
        return render(request, "profitshare/earnings/none.html", {"wallet": wallet})
    daily = leg_earnings.daily_earnings(wallet)
    context = {
        "wallet": wallet,
        "roles": roles,
        "overall": leg_earnings.overall(roles),
        "daily": daily,
        "paid_30d": sum(d["paid"] for d in daily),
        "chart": _chart(daily, roles),
        **history,
    }
    return render(request, "profitshare/earnings/page.html", context)


def _csv_rows(rows):
    for row in rows:
        yield [
            row["created_at"].isoformat(),
            str(row["distribution_id"]),
            row["close_ext_id"] or "",
            row["bot_ext_id"],
            row["bot_name"],
            row["role"],
            format_bps(row["bps"]).removesuffix(" %") if row["bps"] is not None else "",
            *(
                format_usdc(row[k], grouping=False)
                for k in ("amount", "carry_in", "paid", "owed", "carried", "voided")
            ),
            row["status"],
            row["paid_at"].isoformat() if row["paid_at"] else "",
            " ".join(row["signatures"]),
        ]


@require_GET
@wallet_required
def history_csv(request, wallet: str):
    """``/earnings/history.csv``: every leg of the signed-in wallet matching the page's filters,
    streamed (ISO 8601 UTC times, USDC amounts with 6 decimals, the rate in percent, empty for
    the creator's remainder, and the signatures that paid each leg). A wallet without legs, or
    an invalid filter, gets the header only."""
    return csv_response(
        CSV_HEADER, _csv_rows(leg_earnings.history_for_export(wallet, request.GET)), name="legs"
    )
