"""Published signal bots and their profit-share terms."""

from __future__ import annotations

from django.db import models

MAX_PROFIT_SHARE_BPS = 1_000  # 10 %, the marketplace's cap


class Policy(models.TextChoices):
    """How a bot's share is computed (docs/design.md, "High-water mark")."""

    PER_TRADE = "per_trade", "Per trade"
    HIGH_WATER_MARK = "high_water_mark", "High-water mark"


class PublishedBot(models.Model):
    """A creator's bot on the marketplace. Never hard-deleted: ``deleted_at`` marks deletion.

    ``profit_share_bps``: basis points of realized PnL owed to the creator (0..1000 = 0..10 %).
    Existing subscriptions hold their own snapshot of the rate (``Subscription``).
    """

    bot_id = models.CharField(max_length=64, unique=True)
    creator = models.ForeignKey("profitshare.CreatorWallet", on_delete=models.PROTECT, related_name="bots")
    name = models.CharField(max_length=120)
    profit_share_bps = models.PositiveSmallIntegerField()
    policy = models.CharField(max_length=20, choices=Policy.choices, default=Policy.PER_TRADE)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(profit_share_bps__gte=0, profit_share_bps__lte=MAX_PROFIT_SHARE_BPS),
                name="bot_bps_0_to_1000",
            ),
            models.CheckConstraint(condition=models.Q(policy__in=Policy.values), name="bot_policy_known"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.bot_id})"
