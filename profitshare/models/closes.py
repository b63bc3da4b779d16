"""Reported position closes and the distribution each one owes the creator."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class CloseKind(models.TextChoices):
    FULL = "full", "Full close"
    PARTIAL = "partial", "Partial close"
    FLIP = "flip", "Closing leg of a flip"


class TradeClose(models.Model):
    """One close reported by the trading platform, exactly once per ``close_id``.

    ``realized_pnl``: the realized PnL of this close only, signed, USDC base units.
    ``body_sha256``: hash of the canonical request body, so a replay with the same body is
    recognised and one with a different body is refused (409).
    """

    close_id = models.CharField(max_length=64, unique=True)
    subscription = models.ForeignKey("profitshare.Subscription", on_delete=models.PROTECT, related_name="closes")
    market_index = models.PositiveIntegerField()
    realized_pnl = models.BigIntegerField()
    kind = models.CharField(max_length=8, choices=CloseKind.choices)
    closed_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    body_sha256 = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(market_index__lte=65_535), name="close_market_index_u16"),
            models.CheckConstraint(condition=Q(kind__in=CloseKind.values), name="close_kind_known"),
        ]
        indexes = [models.Index(fields=["subscription", "closed_at"])]

    def __str__(self) -> str:
        return self.close_id


class DistributionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    PAID = "paid", "Paid"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    OWED = "owed", "Owed"
    CARRIED = "carried", "Carried (dust)"
    VOIDED = "voided", "Voided by an admin"


class LegRole(models.TextChoices):
    """Who a leg of a split share pays (docs/design.md, "Splits add up")."""

    CREATOR = "creator", "Creator"
    PLATFORM = "platform", "Platform fee"
    REFERRAL_1 = "referral_1", "Referral, level 1"
    REFERRAL_2 = "referral_2", "Referral, level 2"
    REFERRAL_3 = "referral_3", "Referral, level 3"


class Distribution(models.Model):
    """What one close owes the creator and what became of it (USDC base units).

    ``share``: this close's share by policy (floor, in the subscriber's favour). ``carry_in``:
    dust carried from earlier closes folded into this payout. The amount due is
    ``share + carry_in``, and at every moment ``paid + owed + carried + voided == share +
    carry_in`` (a database constraint): a distribution starts fully ``owed``; payments move owed
    to ``paid``, the dust rule moves it to ``carried`` (forward to a later distribution's
    ``carry_in``), and only an admin's void moves it to ``voided``. ``withdrawn``: USDC
    already withdrawn from Drift into the agent's token account for this distribution and not
    yet transferred (used on retry, never withdrawn again). ``close`` is null for the final
    carry flush when a subscription ends.

    ``split_terms``: the split terms in force when the share was computed (docs/design.md,
    "Split terms are snapshotted"): ``{"platform_fee_bps": int, "treasury": str, "referral":
    [[wallet, bps], ...]}`` (the creator's referral chain, level 1 first, each with its level's
    rate); ``{}`` on distributions recorded before splits existed: no splits.
    ``profitshare.services.splits.terms_of`` reads it.
    """

    close = models.OneToOneField(
        "profitshare.TradeClose", on_delete=models.PROTECT, related_name="distribution", null=True, blank=True
    )
    subscription = models.ForeignKey(
        "profitshare.Subscription", on_delete=models.PROTECT, related_name="distributions"
    )
    creator = models.ForeignKey("profitshare.CreatorWallet", on_delete=models.PROTECT, related_name="distributions")
    bot = models.ForeignKey("profitshare.PublishedBot", on_delete=models.PROTECT, related_name="distributions")
    realized_pnl = models.BigIntegerField()
    profit_share_bps = models.PositiveSmallIntegerField()
    policy = models.CharField(max_length=20)
    share = models.BigIntegerField()
    carry_in = models.BigIntegerField(default=0)
    paid = models.BigIntegerField(default=0)
    owed = models.BigIntegerField()
    carried = models.BigIntegerField(default=0)
    voided = models.BigIntegerField(default=0)
    withdrawn = models.BigIntegerField(default=0)
    settled = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=DistributionStatus.choices, default=DistributionStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    split_terms = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(share__gte=0), name="distribution_share_gte_0"),
            models.CheckConstraint(condition=Q(carry_in__gte=0), name="distribution_carry_in_gte_0"),
            models.CheckConstraint(condition=Q(paid__gte=0), name="distribution_paid_gte_0"),
            models.CheckConstraint(condition=Q(owed__gte=0), name="distribution_owed_gte_0"),
            models.CheckConstraint(condition=Q(carried__gte=0), name="distribution_carried_gte_0"),
            models.CheckConstraint(condition=Q(voided__gte=0), name="distribution_voided_gte_0"),
            models.CheckConstraint(condition=Q(withdrawn__gte=0), name="distribution_withdrawn_gte_0"),
            models.CheckConstraint(
                condition=Q(paid=F("share") + F("carry_in") - F("owed") - F("carried") - F("voided")),
                name="distribution_amounts_sum_to_due",
            ),
            models.CheckConstraint(
                condition=Q(profit_share_bps__lte=1_000), name="distribution_bps_0_to_1000"
            ),
        ]
        indexes = [
            models.Index(fields=["creator", "-created_at"]),
            models.Index(fields=["subscription", "-created_at"]),
            models.Index(fields=["status"]),
        ]

    def __str__(self) -> str:
        return f"distribution {self.pk} ({self.status})"

    def resting_status(self) -> str:
        """The status this distribution rests in when no run holds it, from its amounts:
        ``paid`` (nothing owed, something paid, or nothing was ever due: a flush whose carries
        went elsewhere), ``voided`` (nothing owed or paid, an admin voided a debt of it),
        ``carried`` (all of it carried forward), ``partially_paid`` or ``owed``."""
        if self.owed == 0:
            if self.paid or self.due == 0:
                return DistributionStatus.PAID
            return DistributionStatus.VOIDED if self.voided else DistributionStatus.CARRIED
        return DistributionStatus.PARTIALLY_PAID if self.paid else DistributionStatus.OWED

    @property
    def due(self) -> int:
        """Base units this distribution must account for: ``share + carry_in``."""
        return self.share + self.carry_in
