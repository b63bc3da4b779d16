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

from django.db import connection
from django.db.models import F, Sum
from django.utils import timezone

from profitshare.filters import DistributionHistoryFilter
from profitshare.models import (
    IOU,
    AttemptStatus,
    CreatorWallet,
    Distribution,
    EarningsDay,
    IouStatus,
    PayoutAttempt,
    PublishedBot,
    Subscription,
    SubscriptionEarnings,
)
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


def creator_with_bots(address: str) -> tuple[CreatorWallet | None, list[PublishedBot]]:
    """The creator whose own wallet is ``address`` (None when there is none) and its bots,
    deleted ones too (they keep their history), by name; one query when it has bots."""
    bots = list(PublishedBot.objects.filter(creator__address=address).select_related("creator").order_by("name", "pk"))
    if bots:
        return bots[0].creator, bots
    return creator_by_address(address), []


def creator_bots(creator_id: int) -> list[PublishedBot]:
    """The creator's bots (deleted ones too: they keep their history), by name."""
    return list(PublishedBot.objects.filter(creator_id=creator_id).order_by("name", "pk"))


def creator_bot(creator_id: int, bot_id: str) -> PublishedBot | None:
    """The creator's own bot with external id ``bot_id``; None when it is someone else's."""
    return PublishedBot.objects.filter(creator_id=creator_id, bot_id=bot_id).first()


@dataclass(frozen=True)
class CreatorSums:
    """What the dashboard rolls up, read in one statement (``creator_sums``), in USDC base
    units: ``bots``: per bot pk ``paid``, ``paid_closes``, ``voided``, ``owed`` (pending IOUs),
    ``carried`` (dust waiting on its subscriptions) and ``subscribers`` (subscriptions paid or
    owing); ``top``: the candidates for the per-subscriber breakdown, every subscription among
    the ``limit`` most paid (of ``bot_pk`` when given) and every one that owes (``subscription_id``
    and ``bot_id`` pks, ``subscription_ext_id``, ``subscriber_wallet``, ``paid``, ``paid_closes``,
    ``owed``); ``days``: UTC day to ``(paid, paid_closes)`` over the window it was read for."""

    bots: dict[int, dict]
    top: list[dict]
    days: dict[date, tuple[int, int]]


def _creator_sums_sql(*, by_bot: bool) -> str:
    qn = connection.ops.quote_name
    earn, iou, sub, bot, day = (
        qn(m._meta.db_table) for m in (SubscriptionEarnings, IOU, Subscription, PublishedBot, EarningsDay)
    )
    pending = ", ".join(["%s"] * len(IouStatus.ACTIVE))
    of_bot = "AND e.bot_id = %s " if by_bot else ""
    one = f"(SELECT {{}} FROM {sub} s WHERE s.id = g.subscription_id)"  # a column of a few rows, by pk
    # one round trip for five sources; the first column says which a row comes from:
    # b: the subscription rollups summed per bot; t: the most paid subscriptions (the
    # ``(creator, -paid, subscription)`` index gives them in order); o: what pending IOUs owe
    # per subscription (their partial index); d: dust on subscriptions per bot; y: day rollups
    return (
        f"SELECT 'b', NULL, e.bot_id, NULL, NULL, SUM(e.paid), SUM(e.paid_closes), SUM(e.voided), "  # noqa: S608 - quoted identifiers; values are parameters
        f"SUM(CASE WHEN e.paid > 0 THEN 1 ELSE 0 END) FROM {earn} e WHERE e.creator_id = %s GROUP BY e.bot_id "
        f"UNION ALL "
        f"SELECT 't', t.subscription_id, t.bot_id, s.subscription_id, s.subscriber_wallet, t.paid, t.paid_closes, 0, 0 "
        f"FROM (SELECT e.subscription_id, e.bot_id, e.paid, e.paid_closes FROM {earn} e "
        f"WHERE e.creator_id = %s AND e.paid > 0 {of_bot}ORDER BY e.paid DESC, e.subscription_id LIMIT %s) t "
        f"JOIN {sub} s ON s.id = t.subscription_id "
        f"UNION ALL "
        f"SELECT 'o', g.subscription_id, {one.format('s.bot_id')}, {one.format('s.subscription_id')}, "
        f"{one.format('s.subscriber_wallet')}, g.owed, "
        f"(SELECT e.paid FROM {earn} e WHERE e.subscription_id = g.subscription_id), "
        f"(SELECT e.paid_closes FROM {earn} e WHERE e.subscription_id = g.subscription_id), 0 "
        f"FROM (SELECT i.subscription_id, SUM(i.amount - i.paid_amount) AS owed FROM {iou} i "
        f"WHERE i.creator_id = %s AND i.status IN ({pending}) GROUP BY i.subscription_id) g "
        f"UNION ALL "
        f"SELECT 'd', NULL, s.bot_id, NULL, NULL, SUM(s.dust_carry), 0, 0, 0 FROM {sub} s JOIN {bot} b ON b.id = s.bot_id "
        f"WHERE b.creator_id = %s AND s.dust_carry > 0 GROUP BY s.bot_id "
        f"UNION ALL "
        f"SELECT 'y', NULL, NULL, CAST(y.day AS VARCHAR(10)), NULL, SUM(y.paid), SUM(y.paid_closes), 0, 0 FROM {day} y "
        f"WHERE y.creator_id = %s AND y.day >= %s GROUP BY y.day"
    )


def _window_start(days: int, now: datetime | None) -> date:
    return (now or timezone.now()).astimezone(UTC).date() - timedelta(days=days - 1)


def _bot_acc() -> dict:
    return {"paid": 0, "paid_closes": 0, "voided": 0, "owed": 0, "carried": 0, "subscribers": 0}


def creator_sums(
    creator_id: int, *, bot_pk: int | None = None, limit: int = BREAKDOWN_LIMIT, days: int = WINDOW_DAYS,
    now: datetime | None = None,
) -> CreatorSums:
    """The creator's rollups per bot, the candidates for its top ``limit`` subscriptions (of
    ``bot_pk`` when given) and the day rollups of the last ``days`` UTC days (see
    ``CreatorSums``): one statement whose cost follows the creator's bots, owing subscriptions
    and ``limit``, not its distributions."""
    bots: dict[int, dict] = {}
    top: dict[int, dict] = {}
    by_day: dict[date, tuple[int, int]] = {}
    params = [creator_id, creator_id, *([bot_pk] if bot_pk is not None else []), limit, creator_id,
              *IouStatus.ACTIVE, creator_id, creator_id, _window_start(days, now)]
    with connection.cursor() as cursor:
        cursor.execute(_creator_sums_sql(by_bot=bot_pk is not None), params)
        for kind, sub_pk, bot, ext_id, wallet, amount, closes, third, fourth in cursor.fetchall():
            if kind == "b":
                acc = bots.setdefault(bot, _bot_acc())
                acc["paid"], acc["paid_closes"], acc["voided"] = int(amount), int(closes), int(third)
                acc["subscribers"] += int(fourth)
            elif kind == "d":
                bots.setdefault(bot, _bot_acc())["carried"] = int(amount)
            elif kind == "y":
                by_day[date.fromisoformat(ext_id[:10])] = (int(amount), int(closes))
            else:
                row = top.setdefault(sub_pk, {
                    "subscription_id": sub_pk, "bot_id": bot, "subscription_ext_id": ext_id,
                    "subscriber_wallet": wallet, "paid": 0, "paid_closes": 0, "owed": 0,
                })
                if kind == "t":
                    row["paid"], row["paid_closes"] = int(amount), int(closes)
                else:  # o: what it owes, with what it was paid (NULL: never)
                    row["owed"] = int(amount)
                    row["paid"], row["paid_closes"] = int(closes or 0), int(third or 0)
                    acc = bots.setdefault(bot, _bot_acc())
                    acc["owed"] += row["owed"]
                    acc["subscribers"] += 0 if row["paid"] else 1
    return CreatorSums(bots, list(top.values()), by_day)


def daily_earnings(
    creator_id: int, *, days: int = WINDOW_DAYS, now: datetime | None = None, sums: CreatorSums | None = None
) -> list[dict]:
    """Paid per UTC day (on that day's distributions) over the last ``days`` days, every day
    present (0 when nothing): ``[{"day": date, "paid": int, "paid_closes": int}, ...]`` oldest
    first; from ``sums`` (``creator_sums`` read for the same window) or read here (at most
    ``days`` rollup rows per bot)."""
    first = _window_start(days, now)
    if sums is None:
        rows = (
            EarningsDay.objects.filter(creator_id=creator_id, day__gte=first)
            .values("day")
            .annotate(paid_sum=Sum("paid"), closes=Sum("paid_closes"))
            .order_by()
        )
        by_day = {row["day"]: (row["paid_sum"], row["closes"]) for row in rows}
    else:
        by_day = sums.days
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        paid, closes = by_day.get(day, (0, 0))
        out.append({"day": day, "paid": paid, "paid_closes": closes})
    return out


def creator_totals(
    creator_id: int, *, sums: CreatorSums | None = None, daily: list[dict] | None = None, now: datetime | None = None
) -> CreatorTotals:
    """Totals of one creator from its ``creator_sums`` and ``daily_earnings`` (30 days), each
    read here unless given."""
    sums = creator_sums(creator_id, now=now) if sums is None else sums
    daily = daily_earnings(creator_id, now=now, sums=sums) if daily is None else daily
    bots = sums.bots.values()
    return CreatorTotals(
        lifetime_paid=sum(b["paid"] for b in bots),
        paid_30d=sum(row["paid"] for row in daily),
        owed_in_ious=sum(b["owed"] for b in bots),
        carried_dust=sum(b["carried"] for b in bots),
        paid_closes=sum(b["paid_closes"] for b in bots),
    )


def earnings_by_bot(
    creator_id: int, *, sums: CreatorSums | None = None, bots: list[PublishedBot] | None = None
) -> list[dict]:
    """Per bot (bots without earnings too, by name): ``bot_id``, ``name``,
    ``profit_share_bps``, ``policy`` (label), ``deleted``, ``paid_closes``, ``paid``, ``owed``
    (pending IOUs), ``voided`` and ``carried`` (dust waiting on its subscriptions)."""
    sums = creator_sums(creator_id) if sums is None else sums
    bots = creator_bots(creator_id) if bots is None else bots
    return [
        {
            "bot_id": bot.bot_id,
            "name": bot.name,
            "profit_share_bps": bot.profit_share_bps,
            "policy": bot.get_policy_display(),
            "deleted": bot.deleted_at is not None,
            **{k: v for k, v in sums.bots.get(bot.pk, _bot_acc()).items() if k != "subscribers"},
        }
        for bot in bots
    ]


def earnings_by_subscriber(
    creator_id: int, *, bot_pk: int | None = None, sums: CreatorSums | None = None,
    bots: list[PublishedBot] | None = None, limit: int = BREAKDOWN_LIMIT,
) -> dict:
    """The creator's top ``limit`` subscriptions by amount paid, then owed (optionally of one
    bot; ``sums`` must then have been read for that bot): ``{"rows": [{"subscription_id"
    (external id), "subscriber_wallet", "bot_name", "paid_closes", "paid", "owed"}], "total":
    int}`` where ``total`` counts every subscription that was paid or still owes."""
    sums = creator_sums(creator_id, bot_pk=bot_pk, limit=limit) if sums is None else sums
    bots = creator_bots(creator_id) if bots is None else bots
    names = {bot.pk: bot.name for bot in bots}
    rows = [row for row in sums.top if bot_pk is None or row["bot_id"] == bot_pk]
    top = sorted(rows, key=lambda row: (-row["paid"], -row["owed"], row["subscription_id"]))[:limit]
    total = sum(b["subscribers"] for pk, b in sums.bots.items() if bot_pk is None or pk == bot_pk)
    return {
        "rows": [
            {
                "subscription_id": r["subscription_ext_id"], "subscriber_wallet": r["subscriber_wallet"],
                "bot_name": names.get(r["bot_id"], ""), **{k: r[k] for k in ("paid_closes", "paid", "owed")},
            }
            for r in top
        ],
        "total": total,
    }


def history_filter(creator_id: int, data, *, bots: list[PublishedBot] | None = None) -> DistributionHistoryFilter:
    """The history FilterSet bound to ``data`` (a query dict) and the creator's distributions
    (``bots``: the creator's bots when already read, for the bot choices)."""
    return DistributionHistoryFilter(
        data, queryset=Distribution.objects.filter(creator_id=creator_id), creator_id=creator_id, bots=bots
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
    creator_id: int, data, *, after: str | None = None, before: str | None = None, limit: int = HISTORY_PAGE_SIZE,
    bots: list[PublishedBot] | None = None,
) -> dict:
    """One page of the creator's distributions, newest first, filtered by ``data`` (see
    ``DistributionHistoryFilter``) and keyset-paginated: ``after`` (older than that cursor)
    or ``before`` (newer than it); ``bots``: the creator's bots when already read.

    Returns ``{"filter": FilterSet, "valid": bool, "rows": [...], "older": cursor | None,
    "newer": cursor | None}``; an invalid filter (e.g. another creator's bot) gives no rows.
    """
    filterset = history_filter(creator_id, data, bots=bots)
    if not filterset.is_valid():
        return {"filter": filterset, "valid": False, "rows": [], "older": None, "newer": None}
    # no probe for newer rows: a page reached through a cursor has newer rows (it was linked
    # from them), which spares a query per page
    page = keyset_page(
        filterset.qs, after=Cursor.parse(after), before=Cursor.parse(before), limit=limit, fetch=_history_rows,
        probe=False,
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
