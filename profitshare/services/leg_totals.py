"""Running totals of the legs (``LegTotals``, and per UTC day ``LegDay``), kept in step with
the legs (docs/design.md, "All legs are paid together").

Every change of a leg's amounts adds its delta here in the same database transaction: intake
(a new leg: one more, ``earned`` and ``owed`` its amount), a creator leg made for a
distribution recorded before splits, a carry folded in (``owed`` up) or carried away (``owed``
down), a landed payout (``owed`` to ``paid``) and an admin's void (``owed`` to ``voided``).
``add`` sums the deltas of a call per (creator, wallet, role) and writes them with one
multi-row upsert, rows in key order so concurrent batches take the row locks in the same
order; the ``earned`` and ``paid`` parts go the same way, per (wallet, role, day of the leg,
shard of the creator), into ``LegDay``, after. Callers go through ``services.running_totals`` (written last).
``rebuild`` recomputes both tables from the legs (``manage.py rebuild_earnings``, and the
migrations that add them); ``ledger_sums`` / ``rollup_sums`` give both sides for comparison.
Amounts are USDC base units.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate

from profitshare.db.bulk import upsert_adding
from profitshare.models import DistributionLeg, LegDay, LegTotals
from profitshare.models.earnings import LEG_DAY_SHARDS

_KEY = ("creator_id", "wallet", "role")
_ADDED = ("legs", "earned", "paid", "owed", "voided")
_DAY_KEY = ("wallet", "role", "day", "shard")
_DAY_ADDED = ("earned", "paid")

#: One delta: ``(creator id, wallet, role, legs, earned, paid, owed, voided, day)``; ``day``
#: is the UTC day of the leg's ``created_at`` (its distribution's).
Delta = tuple[int, str, str, int, int, int, int, int, date]


def utc_day(moment: datetime) -> date:
    """The UTC day a leg's earnings count on."""
    return moment.astimezone(UTC).date()


def delta(creator_id: int, leg: DistributionLeg, *, legs: int = 0, earned: int = 0, paid: int = 0, owed: int = 0,
          voided: int = 0) -> Delta:
    """The delta of one leg (of a distribution of ``creator_id``) for ``add``."""
    return (creator_id, leg.wallet, leg.role, legs, earned, paid, owed, voided, utc_day(leg.created_at))


def add(deltas: Iterable[Delta]) -> None:
    """Add ``deltas`` to the running totals; call it inside the transaction that changes the
    legs, after it did. Two statements per call at most, whatever the number of deltas (the
    totals, then the days); keys whose deltas cancel out are not written."""
    acc: dict[tuple[int, str, str], list[int]] = {}
    days: dict[tuple[str, str, date, int], list[int]] = {}
    for creator_id, wallet, role, *amounts, day in deltas:
        row = acc.setdefault((creator_id, wallet, role), [0] * len(_ADDED))
        for index, amount in enumerate(amounts):
            row[index] += amount
        earned, paid = amounts[1], amounts[2]
        if earned or paid:
            per_day = days.setdefault((wallet, role, day, creator_id % LEG_DAY_SHARDS), [0, 0])
            per_day[0] += earned
            per_day[1] += paid
    rows = [(*key, *amounts) for key, amounts in sorted(acc.items()) if any(amounts)]
    upsert_adding(LegTotals._meta.db_table, _KEY, (), _ADDED, rows)
    day_rows = [(*key, *amounts) for key, amounts in sorted(days.items()) if any(amounts)]
    upsert_adding(LegDay._meta.db_table, _DAY_KEY, (), _DAY_ADDED, day_rows)


def _ledger_rows(leg_model):
    return (
        leg_model.objects.values("distribution__creator_id", "wallet", "role")
        .annotate(legs=Count("pk"), earned=Sum("amount"), paid=Sum("paid"), owed=Sum("owed"), voided=Sum("voided"))
        .order_by()
    )


def _day_rows(leg_model):
    return (
        leg_model.objects.annotate(
            day=TruncDate("created_at", tzinfo=UTC), shard=F("distribution__creator_id") % LEG_DAY_SHARDS
        )
        .values("wallet", "role", "day", "shard")
        .annotate(earned=Sum("amount"), paid=Sum("paid"))
        .order_by()
    )


def rebuild(*, leg_model=DistributionLeg, totals_model=LegTotals, day_model=LegDay) -> int:
    """Recompute the running totals and the days from the legs (either left alone when its model
    is None), in one transaction (on PostgreSQL the tables are locked first, in the order
    payouts take them, so payouts landing meanwhile wait and then add their deltas on top). The
    models may be a migration's historical ones. Returns the rows written to the first table."""
    tables = []
    if totals_model is not None:
        tables.append((totals_model, _ledger_rows(leg_model), "creator_id, wallet, role, legs, earned, paid, owed, voided"))
    if day_model is not None:
        tables.append((day_model, _day_rows(leg_model), "wallet, role, day, shard, earned, paid"))
    written = []
    with transaction.atomic(), connection.cursor() as cursor:
        for model, _, _ in tables:
            if connection.vendor == "postgresql":
                cursor.execute(f"LOCK TABLE {connection.ops.quote_name(model._meta.db_table)} IN EXCLUSIVE MODE")
        for model, rows, columns in tables:
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - a quoted identifier
            sql, params = rows.query.sql_with_params()
            cursor.execute(f"INSERT INTO {table} ({columns}) {sql}", params)  # noqa: S608
            written.append(cursor.rowcount)
    return written[0] if written else 0


def ledger_sums() -> dict[tuple, tuple[int, ...]]:
    """What the running totals must hold, from the legs: ``{(creator id, wallet, role): (legs,
    earned, paid, owed, voided)}`` and, for the days, ``{("day", wallet, role, day, shard):
    (earned, paid)}``."""
    sums: dict[tuple, tuple[int, ...]] = {
        (r["distribution__creator_id"], r["wallet"], r["role"]): tuple(r[k] for k in _ADDED)
        for r in _ledger_rows(DistributionLeg)
    }
    sums.update(
        (("day", r["wallet"], r["role"], r["day"], r["shard"]), (r["earned"], r["paid"]))
        for r in _day_rows(DistributionLeg) if r["earned"] or r["paid"]
    )
    return sums


def rollup_sums() -> dict[tuple, tuple[int, ...]]:
    """The running totals in the shape of ``ledger_sums`` (rows of zeros left out)."""
    sums: dict[tuple, tuple[int, ...]] = {
        (r.creator_id, r.wallet, r.role): tuple(getattr(r, k) for k in _ADDED)
        for r in LegTotals.objects.exclude(legs=0, earned=0, paid=0, owed=0, voided=0)
    }
    sums.update(
        (("day", r.wallet, r.role, r.day, r.shard), (r.earned, r.paid))
        for r in LegDay.objects.exclude(earned=0, paid=0)
    )
    return sums
