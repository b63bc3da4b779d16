"""The legs of a split share (docs/design.md, "Splits add up", "All legs are paid together"):
who is paid what of one distribution, and the dust carried per recipient between distributions."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from profitshare.models.closes import LegRole


class DistributionLeg(models.Model):
    """One recipient's part of a distribution (USDC base units).

    ``role`` (``LegRole``) and ``wallet`` (base58) say who; ``bps`` the rate it was computed
    with (basis points of the share; null for the creator, whose leg is the remainder).
    ``amount``: its part of the share; ``carry_in``: this recipient's dust from earlier
    distributions of the same subscription folded into this payout. Like the distribution,
    ``paid + owed + carried + voided == amount + carry_in`` at every moment (a database
    constraint), and the distribution's ``share``, ``carry_in``, ``paid``, ``owed``, ``carried``
    and ``voided`` are the sums over its legs. A wallet has at most one leg per distribution.
    ``created_at`` is the distribution's (earnings are keyed by the day of the close).
    """

    distribution = models.ForeignKey("profitshare.Distribution", on_delete=models.PROTECT, related_name="legs")
    role = models.CharField(max_length=12, choices=LegRole.choices)
    wallet = models.CharField(max_length=44)
    bps = models.PositiveSmallIntegerField(null=True, blank=True)
    amount = models.BigIntegerField()
    carry_in = models.BigIntegerField(default=0)
    paid = models.BigIntegerField(default=0)
    owed = models.BigIntegerField()
    carried = models.BigIntegerField(default=0)
    voided = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["distribution", "wallet"], name="leg_one_per_wallet"),
            models.CheckConstraint(condition=Q(role__in=LegRole.values), name="leg_role_known"),
            models.CheckConstraint(
                condition=Q(amount__gte=0, carry_in__gte=0, paid__gte=0, owed__gte=0, carried__gte=0, voided__gte=0),
                name="leg_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(paid=F("amount") + F("carry_in") - F("owed") - F("carried") - F("voided")),
                name="leg_amounts_sum_to_due",
            ),
        ]
        indexes = [models.Index(fields=["wallet", "role", "-created_at"], name="leg_wallet_role_created")]

    def __str__(self) -> str:
        return f"{self.role} leg of distribution {self.distribution_id}: {self.amount}"

    @property
    def due(self) -> int:
        """Base units this leg must account for: ``amount + carry_in``."""
        return self.amount + self.carry_in


class CarryReason(models.TextChoices):
    DUST = "dust", "Below the dust threshold"
    NO_TOKEN_ACCOUNT = "no_token_account", "The recipient has no USDC token account yet"


class LegCarry(models.Model):
    """What one subscription carries for a recipient other than the creator (the creator's
    carry is ``Subscription.dust_carry``): ``amount`` USDC base units of legs not paid yet
    because they were dust, or because ``wallet`` has no USDC token account (the subscriber
    pays the rent of the creator's account only; docs/design.md, "Dust is carried per
    recipient"). Folded into the recipient's leg of the subscription's next distribution."""

    subscription = models.ForeignKey("profitshare.Subscription", on_delete=models.PROTECT, related_name="leg_carries")
    wallet = models.CharField(max_length=44)
    role = models.CharField(max_length=12, choices=LegRole.choices)
    amount = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=20, choices=CarryReason.choices, default=CarryReason.DUST)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "wallet"], name="leg_carry_one_per_wallet"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="leg_carry_amount_gte_0"),
        ]
        indexes = [models.Index(fields=["wallet", "amount"], name="leg_carry_wallet")]

    def __str__(self) -> str:
        return f"{self.amount} carried for {self.wallet} on subscription {self.subscription_id}"
