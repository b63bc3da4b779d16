"""Earnings rollups (``EarningsDay``, ``SubscriptionEarnings``), kept in step with the ledger.

The engine calls ``record_paid`` inside the transaction that applies landed payouts to the
distributions, and ``void_iou`` calls ``record_voided`` inside the transaction that voids; both
add deltas with one multi-row upsert per table (``INSERT … ON CONFLICT … DO UPDATE SET x = x +
excluded.x``, PostgreSQL and SQLite alike), rows in key order so concurrent batches take the
row locks in the same order. ``rebuild`` recomputes both tables from the ledger
(``manage.py rebuild_earnings``, and the migration that adds them); ``ledger_sums`` /
``rollup_sums`` give both sides for comparison. Amounts are USDC base units.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from profitshare.db.bulk import upsert_adding
from profitshare.models import Distribution, EarningsDay, SubscriptionEarnings

_DAY = EarningsDay._meta.db_table
_SUB = SubscriptionEarnings._meta.db_table


def record_paid(payouts: Iterable[tuple[Distribution, int]]) -> None:
    """Add landed payouts to the rollups; call it inside the transaction that adds them to the
    distributions' ``paid`` (the engine's ``_apply_landed``), after that is done.

    ``payouts``: ``(distribution, amount)`` pairs, one per landed payout, ``amount`` in USDC
    base units (> 0); each ``distribution.paid`` must already include every amount given for
    it here (a distribution whose ``paid`` before these payouts was 0 counts as one more paid
    close). Two statements per call, whatever the number of payouts. Raises ``ValueError`` for
    a non-positive amount or a distribution whose ``paid`` is below its amounts (nothing is
    written then).
    """
    per_dist: dict[int, list] = {}
    for dist, amount in payouts:
        if int(amount) <= 0:
            raise ValueError(f"payout amount must be positive, got {amount!r}")
        entry = per_dist.setdefault(dist.pk, [dist, 0])
        entry[1] += int(amount)
    if not per_dist:
        return
    days: dict[tuple, list[int]] = {}
    subs: dict[tuple, list[int]] = {}
    for dist, amount in per_dist.values():
        if dist.paid < amount:
            raise ValueError(f"distribution {dist.pk}: paid {dist.paid} is below the payouts given ({amount})")
        first = 1 if dist.paid == amount else 0  # paid was 0 before these payouts
        day = dist.created_at.astimezone(UTC).date()
        acc = days.setdefault((dist.creator_id, day, dist.bot_id), [0, 0])
        acc[0] += amount
        acc[1] += first
        acc = subs.setdefault((dist.subscription_id, dist.creator_id, dist.bot_id), [0, 0, 0])
        acc[0] += amount
        acc[1] += first
    with transaction.atomic(savepoint=False):  # inside the caller's transaction: no savepoint round trips
        upsert_adding(_DAY, ("creator_id", "day", "bot_id"), (), ("paid", "paid_closes"),
                [(*k, *v) for k, v in sorted(days.items())])
        _upsert_subscriptions(subs)


def _upsert_subscriptions(subs: dict[tuple, list[int]]) -> None:
    upsert_adding(_SUB, ("subscription_id",), ("creator_id", "bot_id"), ("paid", "paid_closes", "voided"),
            [(*k, *v) for k, v in sorted(subs.items())])


def record_voided(distribution: Distribution, amount: int) -> None:
    """Add ``amount`` (USDC base units, > 0) voided by an admin on ``distribution`` to its
    subscription's rollup; call it inside the transaction that moves it to the distribution's
    ``voided`` (``ious.void_iou``). One statement. Raises ``ValueError`` for a non-positive
    amount."""
    if int(amount) <= 0:
        raise ValueError(f"voided amount must be positive, got {amount!r}")
    _upsert_subscriptions(
        {(distribution.subscription_id, distribution.creator_id, distribution.bot_id): [0, 0, int(amount)]}
    )


# --- recomputing from the ledger --------------------------------------------------------------------
def _day_rows(distribution_model=Distribution):
    return (
        distribution_model.objects.filter(paid__gt=0)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("creator_id", "day", "bot_id")
        .annotate(paid_sum=Sum("paid"), closes=Count("pk"))
        .order_by()
    )


def _subscription_rows(distribution_model=Distribution):
    return (
        distribution_model.objects.filter(Q(paid__gt=0) | Q(voided__gt=0))
        .values("subscription_id", "creator_id", "bot_id")
        .annotate(paid_sum=Sum("paid"), closes=Count("pk", filter=Q(paid__gt=0)), voided_sum=Sum("voided"))
        .order_by()
    )


def rebuild(*, distribution_model=Distribution, day_model=EarningsDay, subscription_model=SubscriptionEarnings) -> dict:
    """Recompute both rollup tables from the distributions, in one transaction (on PostgreSQL
    the rollup tables are locked first, so payouts landing meanwhile wait and then add their
    deltas on top). The models may be a migration's historical ones. Returns ``{"days": rows,
    "subscriptions": rows}`` written."""
    qn = connection.ops.quote_name
    day_table, sub_table = qn(day_model._meta.db_table), qn(subscription_model._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {day_table}, {sub_table} IN EXCLUSIVE MODE")
        cursor.execute(f"DELETE FROM {day_table}")  # noqa: S608 - quoted identifiers
        cursor.execute(f"DELETE FROM {sub_table}")  # noqa: S608
        # INSERT … SELECT of the ORM's own GROUP BY (columns in values() order, then the
        # annotations): the database does the work, on either backend
        sql, params = _day_rows(distribution_model).query.sql_with_params()
        cursor.execute(f"INSERT INTO {day_table} (creator_id, day, bot_id, paid, paid_closes) {sql}", params)  # noqa: S608
        days = cursor.rowcount
        sql, params = _subscription_rows(distribution_model).query.sql_with_params()
        cursor.execute(
            f"INSERT INTO {sub_table} (subscription_id, creator_id, bot_id, paid, paid_closes, voided) {sql}",  # noqa: S608
            params,
        )
        subscriptions = cursor.rowcount
    return {"days": days, "subscriptions": subscriptions}


def ledger_sums() -> dict:
    """What the rollups must hold, computed from the distributions: ``{"days": {(creator_id,
    day, bot_id): (paid, paid_closes)}, "subscriptions": {subscription_id: (creator_id, bot_id,
    paid, paid_closes, voided)}}`` (only keys with something paid or voided)."""
    return {
        "days": {(r["creator_id"], r["day"], r["bot_id"]): (r["paid_sum"], r["closes"]) for r in _day_rows()},
        "subscriptions": {
            r["subscription_id"]: (r["creator_id"], r["bot_id"], r["paid_sum"], r["closes"], r["voided_sum"])
            for r in _subscription_rows()
        },
    }


def rollup_sums() -> dict:
    """The rollup tables in the shape of ``ledger_sums`` (rows of zeros left out)."""
    return {
        "days": {
            (r.creator_id, r.day, r.bot_id): (r.paid, r.paid_closes)
            for r in EarningsDay.objects.all() if r.paid or r.paid_closes
        },
        "subscriptions": {
            r.subscription_id: (r.creator_id, r.bot_id, r.paid, r.paid_closes, r.voided)
            for r in SubscriptionEarnings.objects.all() if r.paid or r.paid_closes or r.voided
        },
    }
