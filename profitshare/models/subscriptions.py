"""A subscriber copying a bot into their own Drift subaccount, traded by an agent wallet."""

from __future__ import annotations

from django.db import models

from profitshare.models.bots import MAX_PROFIT_SHARE_BPS, Policy


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DELINQUENT = "delinquent", "Delinquent"  # moved funds out while owing (docs/design.md, "Delinquency")
    ENDED = "ended", "Ended"


class Subscription(models.Model):
    """One subscriber's copy of one bot.

    Terms: ``profit_share_bps`` and ``policy`` are the rate this subscriber agreed to. A
    creator's decrease applies at once; an increase or a policy change waits in ``pending_*``
    until ``pending_effective_at`` (the fee timelock, as drift-vaults does on-chain).

    State (USDC base units): ``cumulative_pnl`` and ``high_water_mark`` for the high-water-mark
    policy; ``dust_carry``, shares too small to pay yet (docs/design.md, "Dust is carried").
    """

    subscription_id = models.CharField(max_length=64, unique=True)
    bot = models.ForeignKey("profitshare.PublishedBot", on_delete=models.PROTECT, related_name="subscriptions")
    subscriber_wallet = models.CharField(max_length=44, db_index=True)
    agent_wallet = models.ForeignKey(
        "profitshare.AgentWallet", on_delete=models.PROTECT, related_name="subscriptions"
    )
    drift_subaccount_id = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE)
    profit_share_bps = models.PositiveSmallIntegerField()
    policy = models.CharField(max_length=20, choices=Policy.choices)
    pending_bps = models.PositiveSmallIntegerField(null=True, blank=True)
    pending_policy = models.CharField(max_length=20, choices=Policy.choices, blank=True, default="")
    pending_effective_at = models.DateTimeField(null=True, blank=True)
    cumulative_pnl = models.BigIntegerField(default=0)
    high_water_mark = models.BigIntegerField(default=0)
    dust_carry = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(profit_share_bps__gte=0, profit_share_bps__lte=MAX_PROFIT_SHARE_BPS),
                name="subscription_bps_0_to_1000",
            ),
            models.CheckConstraint(condition=models.Q(dust_carry__gte=0), name="subscription_dust_carry_gte_0"),
            models.CheckConstraint(
                condition=models.Q(drift_subaccount_id__lte=65_535), name="subscription_subaccount_u16"
            ),
            models.CheckConstraint(
                condition=models.Q(high_water_mark__gte=0), name="subscription_hwm_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.subscription_id
