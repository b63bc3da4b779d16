"""Earnings rollups: running totals of what creators were paid, kept in the same database
transaction as the ledger change that moves the money (``profitshare.services.earnings``), so
the creator dashboard reads a few rollup rows instead of scanning every distribution.

Both tables can be recomputed from the ledger at any time (``manage.py rebuild_earnings``);
amounts are USDC base units.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class EarningsDay(models.Model):
    """What one creator was paid through one bot on distributions created on one UTC ``day``.

    ``paid``: the sum of the landed payouts of those distributions (first try or retry), every
    leg of a split share included (the gross; each recipient's part is on ``DistributionLeg``);
    ``paid_closes``: how many of those distributions received at least one payout. Keyed by
    the distribution's creation day (not the payout's), like the dashboard's "last 30 days".
    """

    creator = models.ForeignKey("profitshare.CreatorWallet", on_delete=models.PROTECT, related_name="+", db_index=False)
    bot = models.ForeignKey("profitshare.PublishedBot", on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()
    paid = models.BigIntegerField(default=0)
    paid_closes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # the upsert's conflict target; its (creator, day) prefix serves the 30-day reads
            models.UniqueConstraint(fields=["creator", "day", "bot"], name="earnings_day_key"),
            models.CheckConstraint(condition=Q(paid__gte=0, paid_closes__gte=0), name="earnings_day_non_negative"),
        ]

    def __str__(self) -> str:
        return f"earnings {self.creator_id}/{self.bot_id} {self.day}: {self.paid}"


class SubscriptionEarnings(models.Model):
    """Running totals of one subscription's distributions for its creator: ``paid`` (landed
    payouts), ``paid_closes`` (distributions with at least one payout) and ``voided`` (what
    admins voided on its IOUs)."""

    subscription = models.OneToOneField(
        "profitshare.Subscription", on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    creator = models.ForeignKey("profitshare.CreatorWallet", on_delete=models.PROTECT, related_name="+", db_index=False)
    bot = models.ForeignKey("profitshare.PublishedBot", on_delete=models.PROTECT, related_name="+", db_index=False)
    paid = models.BigIntegerField(default=0)
    paid_closes = models.BigIntegerField(default=0)
    voided = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(paid__gte=0, paid_closes__gte=0, voided__gte=0), name="subscription_earnings_non_negative"
            ),
        ]
        # a creator's rows (summed per bot), most paid first (its top subscribers)
        indexes = [models.Index(fields=["creator", "-paid", "subscription"], name="sub_earnings_creator_paid")]

    def __str__(self) -> str:
        return f"earnings of subscription {self.subscription_id}: {self.paid}"


class LegTotals(models.Model):
    """Running totals of the legs one ``wallet`` earned in one ``role`` on one creator's
    distributions (``profitshare.services.leg_totals``), kept in the same transaction as every
    change of those legs' amounts: ``legs`` (how many), ``earned`` (their ``amount``s), ``paid``,
    ``owed`` and ``voided`` (sums of the same fields, USDC base units). A wallet's earnings page
    sums its rows by role, a creator's dashboard sums the creator's rows by role: a few rows
    instead of every leg. Recomputed from the legs by ``manage.py rebuild_earnings``. No CHECK
    on the sums: a display total must never refuse the transaction that moves money."""

    creator = models.ForeignKey("profitshare.CreatorWallet", on_delete=models.PROTECT, related_name="+", db_index=False)
    wallet = models.CharField(max_length=44)
    role = models.CharField(max_length=12)
    legs = models.BigIntegerField(default=0)
    earned = models.BigIntegerField(default=0)
    paid = models.BigIntegerField(default=0)
    owed = models.BigIntegerField(default=0)
    voided = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # the upsert's conflict target; its creator prefix serves the creator's split
            models.UniqueConstraint(fields=["creator", "wallet", "role"], name="leg_totals_key"),
        ]
        indexes = [models.Index(fields=["wallet", "role"], name="leg_totals_wallet")]

    def __str__(self) -> str:
        return f"leg totals {self.wallet} {self.role} of creator {self.creator_id}: {self.paid} paid"


#: Shards of each (wallet, role, day) in ``LegDay``: a creator's legs count in shard
#: ``creator id % LEG_DAY_SHARDS``.
LEG_DAY_SHARDS = 16


class LegDay(models.Model):
    """What one ``wallet`` earned in one ``role`` on the distributions of one UTC ``day`` (the
    distribution's day, as the creator's dashboard keys earnings): ``earned`` (the legs'
    ``amount``s) and ``paid`` (USDC base units), split over ``LEG_DAY_SHARDS`` rows by the
    creator (``shard`` = creator id modulo the shards). The earnings page's 30-day chart reads
    at most 30 × 16 rows per role instead of every leg of the window; the shards are a sharded
    counter: a treasury paid by every creator has no single row that every creator's intake and
    payouts wait for. Kept with ``LegTotals`` by ``profitshare.services.leg_totals``;
    recomputed by ``manage.py rebuild_earnings``; no CHECK (a display total must never refuse a
    payout)."""

    wallet = models.CharField(max_length=44)
    role = models.CharField(max_length=12)
    day = models.DateField()
    shard = models.SmallIntegerField()
    earned = models.BigIntegerField(default=0)
    paid = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # the upsert's conflict target, and the chart's range scan
            models.UniqueConstraint(fields=["wallet", "role", "day", "shard"], name="leg_day_key"),
        ]

    def __str__(self) -> str:
        return f"leg day {self.wallet} {self.role} {self.day} (shard {self.shard}): {self.paid} paid"
