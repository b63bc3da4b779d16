"""Read-only queries for the creator earnings dashboard (amounts in USDC base units).

The aggregates run in SQL, scoped to one creator through the ``(creator, -created_at)`` index
of ``Distribution``: one scan grouped per subscription (``subscription_sums``) feeds the totals
and both breakdowns, which only roll up those few rows; the history is keyset-paginated, so its
cost does not grow with the number of distributions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from profitshare.filters import DistributionHistoryFilter
from profitshare.models import (
    IOU,
    AttemptStatus,
    CreatorWallet,
    Distribution,
    PayoutAttempt,
    PublishedBot,
    Subscription,
)
from profitshare.selectors.history import ACTIVE_IOU_STATUSES as OWED_IOU_STATUSES
from profitshare.selectors.history import Cursor, keyset_page

HISTORY_PAGE_SIZE = 25
CSV_CHUNK = 2_000
BREAKDOWN_LIMIT = 20

HISTORY_FIELDS = (
    "pk", "created_at", "realized_pnl", "profit_share_bps", "policy", "share", "carry_in", "paid", "owed",
    "carried", "voided", "status",
)


@dataclass(frozen=True)
class CreatorTotals:
    """A creator's totals: ``lifetime_paid`` (landed payouts), ``paid_30d`` (paid on
    distributions of the last 30 days), ``owed_in_ious`` (what IOUs still owe them),
    ``carried_dust`` (shares too small to pay yet, waiting on subscriptions) and
    ``distributions`` (how many)."""

    lifetime_paid: int
    paid_30d: int
    owed_in_ious: int
    carried_dust: int
    distributions: int


def creator_by_address(address: str) -> CreatorWallet | None:
    """The creator whose own wallet is ``address``, or None."""
    return CreatorWallet.objects.filter(address=address).first()


def creator_bots(creator_id: int) -> list[PublishedBot]:
    """The creator's bots (deleted ones too: they keep their history), by name."""
    return list(PublishedBot.objects.filter(creator_id=creator_id).order_by("name", "pk"))


def creator_bot(creator_id: int, bot_id: str) -> PublishedBot | None:
    """The creator's own bot with external id ``bot_id``; None when it is someone else's."""
    return PublishedBot.objects.filter(creator_id=creator_id, bot_id=bot_id).first()


def subscription_sums(creator_id: int, *, now: datetime | None = None) -> list[dict]:
    """The creator's distributions aggregated in SQL per subscription, in one scan of the
    ``(creator, created_at)`` index range: ``subscription_id`` (pk), ``bot_id`` (pk),
    ``distributions``, ``share``, ``paid``, ``owed``, ``carried``, ``voided`` and ``paid_30d``
    (paid on distributions of the last 30 days). One row per subscription that owed a share;
    the totals and breakdowns below roll these rows up."""
    since = (now or timezone.now()) - timedelta(days=30)
    return list(
        Distribution.objects.filter(creator_id=creator_id)
        .values("subscription_id", "bot_id")
        .annotate(
            # paid_30d first: later annotations shadow the field names they aggregate
            paid_30d=Coalesce(Sum("paid", filter=Q(created_at__gte=since)), 0),
            distributions=Count("pk"), share=Sum("share"), paid=Sum("paid"), owed=Sum("owed"),
            carried=Sum("carried"), voided=Sum("voided"),
        )
        .order_by()
    )


def creator_totals(creator_id: int, *, sums: list[dict] | None = None, now: datetime | None = None) -> CreatorTotals:
    """Totals of one creator: its ``subscription_sums`` rolled up, what IOUs still owe it
    (open, processing, expired) and the dust waiting on its subscriptions."""
    sums = subscription_sums(creator_id, now=now) if sums is None else sums
    owed = IOU.objects.filter(creator_id=creator_id, status__in=OWED_IOU_STATUSES).aggregate(
        owed=Coalesce(Sum(F("amount") - F("paid_amount")), 0)
    )["owed"]
    dust = Subscription.objects.filter(bot__creator_id=creator_id).aggregate(dust=Coalesce(Sum("dust_carry"), 0))[
        "dust"
    ]
    return CreatorTotals(
        lifetime_paid=sum(row["paid"] for row in sums),
        paid_30d=sum(row["paid_30d"] for row in sums),
        owed_in_ious=owed,
        carried_dust=dust,
        distributions=sum(row["distributions"] for row in sums),
    )


def daily_earnings(creator_id: int, *, days: int = 30, now: datetime | None = None) -> list[dict]:
    """Paid per UTC day over the last ``days`` days, every day present (0 when nothing):
    ``[{"day": date, "paid": int, "share": int}, ...]`` oldest first."""
    today = (now or timezone.now()).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    rows = (
        Distribution.objects.filter(creator_id=creator_id, created_at__gte=datetime.combine(first, time.min, UTC))
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(paid=Sum("paid"), share=Sum("share"))
    )
    by_day: dict[date, dict] = {row["day"]: row for row in rows}
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day)
        out.append({"day": day, "paid": row["paid"] if row else 0, "share": row["share"] if row else 0})
    return out


_SUM_KEYS = ("distributions", "share", "paid", "owed", "carried", "voided")


def earnings_by_bot(creator_id: int, *, sums: list[dict] | None = None) -> list[dict]:
    """Per bot (bots without distributions too, by name): ``bot_id``, ``name``,
    ``profit_share_bps``, ``policy`` (label), ``deleted``, ``distributions``, ``share``,
    ``paid``, ``owed``, ``carried``, ``voided`` (the ``subscription_sums`` rows of each bot)."""
    sums = subscription_sums(creator_id) if sums is None else sums
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
        }
        for bot in creator_bots(creator_id)
    ]


def earnings_by_subscriber(
    creator_id: int, *, bot_pk: int | None = None, sums: list[dict] | None = None, limit: int = BREAKDOWN_LIMIT
) -> dict:
    """The creator's top ``limit`` subscriptions by amount paid (optionally of one bot):
    ``{"rows": [{"subscription_id", "subscriber_wallet", "bot_name", "distributions", "share",
    "paid", "owed"}], "total": int}`` where ``total`` counts every subscription with a
    distribution."""
    sums = subscription_sums(creator_id) if sums is None else sums
    if bot_pk is not None:
        sums = [row for row in sums if row["bot_id"] == bot_pk]
    top = sorted(sums, key=lambda row: (-row["paid"], row["subscription_id"]))[:limit]
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
            **{k: r[k] for k in ("distributions", "share", "paid", "owed")},
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
