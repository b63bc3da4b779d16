"""Running totals of the legs (``LegTotals``), kept in step with the legs (docs/design.md,
"All legs are paid together").

Every change of a leg's amounts adds its delta here in the same database transaction: intake
(a new leg: one more, ``earned`` and ``owed`` its amount), a creator leg made for a
distribution recorded before splits, a carry folded in (``owed`` up) or carried away (``owed``
down), a landed payout (``owed`` to ``paid``) and an admin's void (``owed`` to ``voided``).
``add`` sums the deltas of a call per (creator, wallet, role) and writes them with one
multi-row upsert, rows in key order so concurrent batches take the row locks in the same
order. ``rebuild`` recomputes the table from the legs (``manage.py rebuild_earnings``, and the
migration that adds it); ``ledger_sums`` / ``rollup_sums`` give both sides for comparison.
Amounts are USDC base units.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Count, Sum

from profitshare.db.bulk import upsert_adding
from profitshare.models import DistributionLeg, LegTotals

_KEY = ("creator_id", "wallet", "role")
_ADDED = ("legs", "earned", "paid", "owed", "voided")

#: One delta: ``(creator id, wallet, role, legs, earned, paid, owed, voided)``.
Delta = tuple[int, str, str, int, int, int, int, int]


def delta(creator_id: int, leg: DistributionLeg, *, legs: int = 0, earned: int = 0, paid: int = 0, owed: int = 0,
          voided: int = 0) -> Delta:
    """The delta of one leg (of a distribution of ``creator_id``) for ``add``."""
    return (creator_id, leg.wallet, leg.role, legs, earned, paid, owed, voided)


def add(deltas: Iterable[Delta]) -> None:
    """Add ``deltas`` to the running totals; call it inside the transaction that changes the
    legs, after it did. One statement per call, whatever the number of deltas; keys whose
    deltas cancel out are not written."""
    acc: dict[tuple[int, str, str], list[int]] = {}
    for creator_id, wallet, role, *amounts in deltas:
        row = acc.setdefault((creator_id, wallet, role), [0] * len(_ADDED))
        for index, amount in enumerate(amounts):
            row[index] += amount
    rows = [(*key, *amounts) for key, amounts in sorted(acc.items()) if any(amounts)]
    upsert_adding(LegTotals._meta.db_table, _KEY, (), _ADDED, rows)


def _ledger_rows(leg_model):
    return (
        leg_model.objects.values("distribution__creator_id", "wallet", "role")
        .annotate(legs=Count("pk"), earned=Sum("amount"), paid=Sum("paid"), owed=Sum("owed"), voided=Sum("voided"))
        .order_by()
    )


def rebuild(*, leg_model=DistributionLeg, totals_model=LegTotals) -> int:
    """Recompute the running totals from the legs, in one transaction (on PostgreSQL the table
    is locked first, so payouts landing meanwhile wait and then add their deltas on top). The
    models may be a migration's historical ones. Returns the rows written."""
    table = connection.ops.quote_name(totals_model._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - a quoted identifier
        sql, params = _ledger_rows(leg_model).query.sql_with_params()
        cursor.execute(
            f"INSERT INTO {table} (creator_id, wallet, role, legs, earned, paid, owed, voided) {sql}",  # noqa: S608
            params,
        )
        return cursor.rowcount


def ledger_sums() -> dict[tuple[int, str, str], tuple[int, ...]]:
    """What the running totals must hold, from the legs: ``{(creator id, wallet, role): (legs,
    earned, paid, owed, voided)}``."""
    return {
        (r["distribution__creator_id"], r["wallet"], r["role"]): tuple(r[k] for k in _ADDED)
        for r in _ledger_rows(DistributionLeg)
    }


def rollup_sums() -> dict[tuple[int, str, str], tuple[int, ...]]:
    """The running totals in the shape of ``ledger_sums`` (rows of zeros left out)."""
    return {
        (r.creator_id, r.wallet, r.role): tuple(getattr(r, k) for k in _ADDED)
        for r in LegTotals.objects.exclude(legs=0, earned=0, paid=0, owed=0, voided=0)
    }
