"""Read-only queries for the creator earnings dashboard (amounts in USDC base units).

Totals and breakdowns read the earnings rollups (``profitshare.models.earnings``), which the
engine keeps in the same transaction as every payout and void: a creator's subscription rows
(a few hundred at most) and 30 day rows per bot, whatever the number of distributions. What IOUs
still owe comes from the pending IOUs (index ``(creator, status)``), carried dust from the
subscriptions. The history is keyset-paginated over the ``(creator, -created_at)`` index, so
its cost does not grow with the number of distributions either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import F, Sum
from django.utils import timezone

from profitshare.filters import DistributionHistoryFilter
from profitshare.models import (
    IOU,
    AttemptStatus,
    CreatorWallet,
    Distribution,
    EarningsDay,
    PayoutAttempt,
    PublishedBot,
    Subscription,
    SubscriptionEarnings,
)
from profitshare.selectors.history import ACTIVE_IOU_STATUSES as OWED_IOU_STATUSES
from profitshare.selectors.history import Cursor, keyset_page

HISTORY_PAGE_SIZE = 25
CSV_CHUNK = 2_000
BREAKDOWN_LIMIT = 20
WINDOW_DAYS = 30

HISTORY_FIELDS = (
    "pk", "created_at", "realized_pnl", "profit_share_bps", "policy", "share", "carry_in", "paid", "owed",
    "carried", "voided", "status",
)
_SUM_KEYS = ("paid_closes", "paid", "owed", "voided")


@dataclass(frozen=True)
class CreatorTotals:
    """A creator's totals: ``lifetime_paid`` (landed payouts), ``paid_30d`` (paid on
    distributions of the last 30 UTC days, today included), ``owed_in_ious`` (what pending IOUs
    still owe them), ``carried_dust`` (shares too small to pay yet, waiting on subscriptions)
    and ``paid_closes`` (distributions that received a payout)."""

    lifetime_paid: int
    paid_30d: int
    owed_in_ious: int
    carried_dust: int
    paid_closes: int


def creator_by_address(address: str) -> CreatorWallet | None:
    """The creator whose own wallet is ``address``, or None."""
    return CreatorWallet.objects.filter(address=address).first()


def creator_bots(creator_id: int) -> list[PublishedBot]:
    """The creator's bots (deleted ones too: they keep their history), by name."""
    return list(PublishedBot.objects.filter(creator_id=creator_id).order_by("name", "pk"))


def creator_bot(creator_id: int, bot_id: str) -> PublishedBot | None:
    """The creator's own bot with external id ``bot_id``; None when it is someone else's."""
    return PublishedBot.objects.filter(creator_id=creator_id, bot_id=bot_id).first()


def subscription_sums(creator_id: int) -> list[dict]:
    """Per subscription of the creator that was paid, had something voided or still owes:
    ``subscription_id`` (pk), ``bot_id`` (pk), ``paid``, ``paid_closes``, ``voided`` (from the
    rollups) and ``owed`` (what its pending IOUs still owe). Two indexed queries (three when
    a subscription owes without having been paid yet); the totals and breakdowns roll these
    rows up."""
    rows = {
        r["subscription_id"]: {**r, "owed": 0}
        for r in SubscriptionEarnings.objects.filter(creator_id=creator_id).values(
            "subscription_id", "bot_id", "paid", "paid_closes", "voided"
        )
    }
    owed = (
        IOU.objects.filter(creator_id=creator_id, status__in=OWED_IOU_STATUSES)
        .values("subscription_id")
        .annotate(owed=Sum(F("amount") - F("paid_amount")))
        .order_by()
    )
    unseen = {}
    for r in owed:
        row = rows.get(r["subscription_id"])
        if row is None:
            unseen[r["subscription_id"]] = r["owed"]
        else:
            row["owed"] = r["owed"]
    if unseen:
        for pk, bot_id in Subscription.objects.filter(pk__in=list(unseen)).values_list("pk", "bot_id"):
            rows[pk] = {"subscription_id": pk, "bot_id": bot_id, "paid": 0, "paid_closes": 0, "voided": 0,
                        "owed": unseen[pk]}
    return list(rows.values())


def dust_by_bot(creator_id: int) -> dict[int, int]:
    """Dust carried on the subscriptions of each of the creator's bots (bot pk to USDC base
    units), waiting to be paid once it crosses the threshold."""
    return dict(
        Subscription.objects.filter(bot__creator_id=creator_id, dust_carry__gt=0)
        .values("bot_id")
        .annotate(dust=Sum("dust_carry"))
        .order_by()
        .values_list("bot_id", "dust")
    )


def daily_earnings(creator_id: int, *, days: int = WINDOW_DAYS, now: datetime | None = None) -> list[dict]:
    """Paid per UTC day (on that day's distributions) over the last ``days`` days, every day
    present (0 when nothing): ``[{"day": date, "paid": int, "paid_closes": int}, ...]`` oldest
    first. Reads at most ``days`` rollup rows per bot."""
    today = (now or timezone.now()).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    rows = (
        EarningsDay.objects.filter(creator_id=creator_id, day__gte=first, day__lte=today)
        .values("day")
        .annotate(paid_sum=Sum("paid"), closes=Sum("paid_closes"))
        .order_by()
    )
    by_day: dict[date, dict] = {row["day"]: row for row in rows}
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day)
        out.append({"day": day, "paid": row["paid_sum"] if row else 0, "paid_closes": row["closes"] if row else 0})
    return out


def creator_totals(
    creator_id: int, *, sums: list[dict] | None = None, daily: list[dict] | None = None,
    dust: dict[int, int] | None = None, now: datetime | None = None,
) -> CreatorTotals:
    """Totals of one creator from its ``subscription_sums``, ``daily_earnings`` (30 days) and
    ``dust_by_bot`` (each computed here unless given)."""
    sums = subscription_sums(creator_id) if sums is None else sums
    daily = daily_earnings(creator_id, now=now) if daily is None else daily
    dust = dust_by_bot(creator_id) if dust is None else dust
    return CreatorTotals(
        lifetime_paid=sum(row["paid"] for row in sums),
        paid_30d=sum(row["paid"] for row in daily),
        owed_in_ious=sum(row["owed"] for row in sums),
        carried_dust=sum(dust.values()),
        paid_closes=sum(row["paid_closes"] for row in sums),
    )


def earnings_by_bot(
    creator_id: int, *, sums: list[dict] | None = None, dust: dict[int, int] | None = None
) -> list[dict]:
    """Per bot (bots without earnings too, by name): ``bot_id``, ``name``,
    ``profit_share_bps``, ``policy`` (label), ``deleted``, ``paid_closes``, ``paid``, ``owed``
    (pending IOUs), ``voided`` and ``carried`` (dust waiting on its subscriptions)."""
    sums = subscription_sums(creator_id) if sums is None else sums
    dust = dust_by_bot(creator_id) if dust is None else dust
    per_bot: dict[int, dict] = {}
    for row in sums:
        acc = per_bot.setdefault(row["bot_id"], dict.fromkeys(_SUM_KEYS, 0))
        for key in _SUM_KEYS:
            acc[key] += row[key]
    return [
        {
            "bot_id": bot.bot_id,
            "name": bot.name,
            "profit_share_bps": bot.profit_share_bps,
            "policy": bot.get_policy_display(),
            "deleted": bot.deleted_at is not None,
            **per_bot.get(bot.pk, dict.fromkeys(_SUM_KEYS, 0)),
            "carried": dust.get(bot.pk, 0),
        }
        for bot in creator_bots(creator_id)
    ]


def earnings_by_subscriber(
    creator_id: int, *, bot_pk: int | None = None, sums: list[dict] | None = None, limit: int = BREAKDOWN_LIMIT
) -> dict:
    """The creator's top ``limit`` subscriptions by amount paid, then owed (optionally of one
    bot): ``{"rows": [{"subscription_id", "subscriber_wallet", "bot_name", "paid_closes",
    "paid", "owed"}], "total": int}`` where ``total`` counts every subscription that was paid
    or still owes."""
    sums = subscription_sums(creator_id) if sums is None else sums
    sums = [row for row in sums if (row["paid"] or row["owed"]) and (bot_pk is None or row["bot_id"] == bot_pk)]
    top = sorted(sums, key=lambda row: (-row["paid"], -row["owed"], row["subscription_id"]))[:limit]
    subs = {
        s["pk"]: s
        for s in Subscription.objects.filter(pk__in=[r["subscription_id"] for r in top]).values(
            "pk", "subscription_id", "subscriber_wallet", bot_name=F("bot__name")
        )
    }
    rows = [
        {
            "subscription_id": subs[r["subscription_id"]]["subscription_id"],
            "subscriber_wallet": subs[r["subscription_id"]]["subscriber_wallet"],
            "bot_name": subs[r["subscription_id"]]["bot_name"],
            **{k: r[k] for k in ("paid_closes", "paid", "owed")},
        }
        for r in top
    ]
    return {"rows": rows, "total": len(sums)}


def history_filter(creator_id: int, data) -> DistributionHistoryFilter:
    """The history FilterSet bound to ``data`` (a query dict) and the creator's distributions."""
    return DistributionHistoryFilter(
        data, queryset=Distribution.objects.filter(creator_id=creator_id), creator_id=creator_id
    )


def _history_rows(qs) -> list[dict]:
    return list(
        qs.values(
            *HISTORY_FIELDS,
            close_ext_id=F("close__close_id"),
            bot_ext_id=F("bot__bot_id"),
            bot_name=F("bot__name"),
            subscription_ext_id=F("subscription__subscription_id"),
            subscriber_wallet=F("subscription__subscriber_wallet"),
        )
    )


def attach_signatures(rows: list[dict]) -> list[dict]:
    """Add ``signatures`` (landed payout signatures, oldest first) and ``paid_at`` (when the
    last one landed) to distribution rows (one query)."""
    by_dist: dict[int, list] = {row["pk"]: [] for row in rows}
    attempts = (
        PayoutAttempt.objects.filter(distribution_id__in=list(by_dist), status=AttemptStatus.LANDED)
        .order_by("created_at", "pk")
        .values_list("distribution_id", "signature", "resolved_at")
    )
    for dist_id, signature, resolved_at in attempts:
        by_dist[dist_id].append((signature, resolved_at))
    for row in rows:
        landed = by_dist[row["pk"]]
        row["signatures"] = [sig for sig, _ in landed]
        row["paid_at"] = max((at for _, at in landed if at), default=None)
    return rows


def distribution_history(
    creator_id: int, data, *, after: str | None = None, before: str | None = None, limit: int = HISTORY_PAGE_SIZE
) -> dict:
    """One page of the creator's distributions, newest first, filtered by ``data`` (see
    ``DistributionHistoryFilter``) and keyset-paginated: ``after`` (older than that cursor)
    or ``before`` (newer than it).

    Returns ``{"filter": FilterSet, "valid": bool, "rows": [...], "older": cursor | None,
    "newer": cursor | None}``; an invalid filter (e.g. another creator's bot) gives no rows.
    """
    filterset = history_filter(creator_id, data)
    if not filterset.is_valid():
        return {"filter": filterset, "valid": False, "rows": [], "older": None, "newer": None}
    page = keyset_page(
        filterset.qs, after=Cursor.parse(after), before=Cursor.parse(before), limit=limit, fetch=_history_rows
    )
    attach_signatures(page["rows"])
    return {"filter": filterset, "valid": True, **page}


def history_for_export(creator_id: int, data) -> Iterator[dict]:
    """Every distribution of the creator matching ``data``, newest first, with signatures,
    fetched ``CSV_CHUNK`` rows at a time by keyset (a large history streams in bounded
    memory). Yields nothing for an invalid filter."""
    filterset = history_filter(creator_id, data)
    if not filterset.is_valid():
        return
    cursor = None
    while True:
        page = keyset_page(filterset.qs, after=cursor, before=None, limit=CSV_CHUNK, fetch=_history_rows, probe=False)
        rows = attach_signatures(page["rows"])
        yield from rows
        if page["older"] is None:
            return
        cursor = Cursor.parse(page["older"])
