"""Keyset pagination shared by the pages, and the subscriber's trade history (every close with
its realized PnL, the creator's share, what was paid and when, what is still owed and why, and
the net PnL after the share). Amounts in USDC base units."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_datetime

from profitshare.models import (
    IOU,
    AttemptStatus,
    IouReason,
    IouStatus,
    PayoutAttempt,
    Subscription,
    TradeClose,
)

TRADES_PAGE_SIZE = 25


@dataclass(frozen=True)
class Cursor:
    """A position in a newest-first listing: the row's timestamp and primary key. Its text
    form is ``<microseconds since epoch>.<pk>``; anything else parses to None."""

    at: datetime
    pk: int

    def __str__(self) -> str:
        micros = int(self.at.timestamp()) * 1_000_000 + self.at.microsecond
        return f"{micros}.{self.pk}"

    @classmethod
    def parse(cls, text) -> Cursor | None:
        """The cursor in ``text`` (a query parameter), or None when absent or malformed."""
        if isinstance(text, Cursor) or text is None:
            return text
        try:
            micros, pk = str(text).split(".", 1)
            micros_int, pk_int = int(micros), int(pk)
            at = datetime.fromtimestamp(micros_int // 1_000_000, tz=UTC).replace(microsecond=micros_int % 1_000_000)
        except (ValueError, OverflowError, OSError):
            return None
        return cls(at, pk_int)


def keyset_page(
    qs: QuerySet,
    *,
    after: Cursor | None,
    before: Cursor | None,
    limit: int,
    fetch: Callable[[QuerySet], list[dict]],
    time_field: str = "created_at",
    probe: bool = True,
) -> dict:
    """One newest-first page of ``qs`` ordered by ``(time_field, pk)`` descending.

    ``after``: rows older than that cursor; ``before``: rows newer than it (the previous page);
    neither: the newest page. ``fetch(qs)`` turns the sliced queryset into row dicts that carry
    ``pk`` and ``time_field``. Returns ``{"rows", "older", "newer"}``: the cursors (text) of
    the next older and newer pages, None at either end (``probe=False`` skips the extra query
    that looks for newer rows: a page reached with ``after`` then always offers a newer one).
    """
    newer_q = lambda c: Q(**{f"{time_field}__gt": c.at}) | Q(**{time_field: c.at, "pk__gt": c.pk})  # noqa: E731
    older_q = lambda c: Q(**{f"{time_field}__lt": c.at}) | Q(**{time_field: c.at, "pk__lt": c.pk})  # noqa: E731
    if before is not None:
        rows = fetch(qs.filter(newer_q(before)).order_by(time_field, "pk")[: limit + 1])
        more_newer = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        has_older = True
        has_newer = more_newer
    else:
        scoped = qs.filter(older_q(after)) if after is not None else qs
        rows = fetch(scoped.order_by(f"-{time_field}", "-pk")[: limit + 1])
        has_older = len(rows) > limit
        rows = rows[:limit]
        has_newer = after is not None and bool(rows) and (not probe or qs.filter(
            newer_q(Cursor(rows[0][time_field], rows[0]["pk"]))
        ).exists())
    cursor = lambda row: str(Cursor(row[time_field], row["pk"]))  # noqa: E731
    return {
        "rows": rows,
        "older": cursor(rows[-1]) if rows and has_older else None,
        "newer": cursor(rows[0]) if rows and has_newer else None,
    }


# --- the subscriber's side -------------------------------------------------------------------------
def subscriptions_of(wallet: str) -> list[dict]:
    """The subscriptions of subscriber ``wallet``, newest first, with the bot's name and terms
    and what is still owed on their IOUs."""
    return list(
        Subscription.objects.filter(subscriber_wallet=wallet)
        .order_by("-created_at", "-pk")
        .values(
            "subscription_id", "status", "profit_share_bps", "policy", "created_at", "dust_carry",
            bot_name=F("bot__name"), bot_ext_id=F("bot__bot_id"),
        )
    )


def subscription_of(wallet: str, subscription_id: str) -> Subscription | None:
    """The subscription ``subscription_id`` if subscriber ``wallet`` owns it, else None (with
    its bot and the bot's creator)."""
    return (
        Subscription.objects.select_related("bot", "bot__creator")
        .filter(subscriber_wallet=wallet, subscription_id=subscription_id)
        .first()
    )


def trade_summary(subscription_pk: int) -> dict:
    """Totals over a subscription's closes (one query): ``closes``, ``realized_pnl``,
    ``share``, ``paid``, ``owed``, ``net_pnl`` (realized PnL less the creator's share), USDC
    base units."""
    sums = TradeClose.objects.filter(subscription_id=subscription_pk).aggregate(
        closes=Count("pk"),
        realized_pnl=Coalesce(Sum("realized_pnl"), 0),
        share=Coalesce(Sum("distribution__share"), 0),
        paid=Coalesce(Sum("distribution__paid"), 0),
        owed=Coalesce(Sum("distribution__owed"), 0),
    )
    sums["net_pnl"] = sums["realized_pnl"] - sums["share"]
    return sums


def _trade_rows(qs) -> list[dict]:
    return list(
        qs.annotate(
            share=Coalesce(F("distribution__share"), Value(0)),
            net_pnl=F("realized_pnl") - Coalesce(F("distribution__share"), Value(0)),
        ).values(
            "pk", "close_id", "closed_at", "kind", "market_index", "realized_pnl", "share", "net_pnl",
            distribution_pk=F("distribution__pk"),
            profit_share_bps=F("distribution__profit_share_bps"),
            carry_in=F("distribution__carry_in"),
            paid=F("distribution__paid"),
            owed=F("distribution__owed"),
            carried=F("distribution__carried"),
            voided=F("distribution__voided"),
            status=F("distribution__status"),
        )
    )


def _landed_and_reasons_sql(count: int) -> str:
    qn = connection.ops.quote_name
    attempt, iou = qn(PayoutAttempt._meta.db_table), qn(IOU._meta.db_table)
    ids = ", ".join(["%s"] * count)
    active = ", ".join(["%s"] * len(IouStatus.ACTIVE))
    # landed signatures (oldest first) and the reason of the IOU still owing, in one round trip
    return (
        f"SELECT 's', distribution_id, signature, resolved_at, created_at, id FROM {attempt} "  # noqa: S608 - quoted identifiers; values are parameters
        f"WHERE distribution_id IN ({ids}) AND status = %s "
        f"UNION ALL SELECT 'r', distribution_id, reason, NULL, created_at, id FROM {iou} "
        f"WHERE distribution_id IN ({ids}) AND status IN ({active}) "
        f"ORDER BY 5, 6"
    )


def trade_history(
    subscription_pk: int, *, after: str | None = None, before: str | None = None, limit: int = TRADES_PAGE_SIZE
) -> dict:
    """One page of a subscription's closes, newest first (keyset on ``closed_at``). Each row:
    the close, its distribution's amounts (None when the close owed nothing), ``net_pnl``,
    ``signatures`` and ``paid_at`` of landed payouts, and ``owed_reason`` / ``owed_reason_label``
    of the IOU that still owes (None when nothing is owed). Two queries."""
    page = keyset_page(
        TradeClose.objects.filter(subscription_id=subscription_pk),
        after=Cursor.parse(after), before=Cursor.parse(before), limit=limit, fetch=_trade_rows,
        time_field="closed_at", probe=False,  # a page reached through a cursor has newer rows
    )
    rows = page["rows"]
    dist_ids = [r["distribution_pk"] for r in rows if r["distribution_pk"]]
    landed: dict[int, list] = {}
    reasons: dict[int, str] = {}
    if dist_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                _landed_and_reasons_sql(len(dist_ids)),
                [*dist_ids, AttemptStatus.LANDED, *dist_ids, *IouStatus.ACTIVE],
            )
            for kind, dist_id, text, resolved_at, _, _ in cursor.fetchall():
                if kind == "s":
                    landed.setdefault(dist_id, []).append((text, _aware(resolved_at)))
                else:
                    reasons[dist_id] = text
    labels = dict(IouReason.choices)
    for row in rows:
        sigs = landed.get(row["distribution_pk"], [])
        row["signatures"] = [s for s, _ in sigs]
        row["paid_at"] = max((at for _, at in sigs if at), default=None)
        reason = reasons.get(row["distribution_pk"])
        row["owed_reason"] = reason
        row["owed_reason_label"] = labels.get(reason, reason) if reason else None
    return page


def _aware(value):
    """A timestamp read by a raw query as the ORM returns it: aware, UTC (SQLite gives text)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value

