"""Payout attempts: the durable record written before any transfer is sent."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class AttemptStatus(models.TextChoices):
    PREPARED = "prepared", "Prepared (recorded, maybe not sent)"
    SENT = "sent", "Sent (outcome not yet known)"
    LANDED = "landed", "Landed"
    FAILED = "failed", "Failed on chain"
    EXPIRED = "expired", "Expired unlanded"


class PayoutPath(models.TextChoices):
    ATOMIC = "atomic", "One transaction: settle, withdraw and pay"
    TRANSFER = "transfer", "Step by step: the transfer after its own settle and withdraw"


class PayoutAttempt(models.Model):
    """One signed payout transaction (docs/design.md, "Exactly once", "A payout is one
    transaction where it can be").

    ``path``: ``atomic`` (Drift ``settle_pnl`` when ``settles``, Drift ``withdraw`` of
    ``withdraw_amount`` base units, ``transfer_checked`` of ``amount``, all under the agent's one
    signature) or ``transfer`` (the ``transfer_checked`` of funds already withdrawn).

    Written and committed with the signed bytes, signature and ``last_valid_block_height``
    before the transaction is sent. Until the blockhash expires the same ``raw_transaction``
    may be re-broadcast; only once it expired unlanded (``expired``) may a new attempt be signed.
    ``amount``: USDC base units, the sum of ``legs``: ``[[leg id, wallet, base units], ...]``, one
    ``transfer_checked`` per leg in that order (docs/design.md, "All legs are paid together";
    ``destination_owner`` / ``destination_ata`` are the first leg's). ``fee_lamports`` and ``slot`` are read back once landed.
    """

    distribution = models.ForeignKey(
        "profitshare.Distribution", on_delete=models.PROTECT, related_name="attempts_log"
    )
    iou = models.ForeignKey(
        "profitshare.IOU", on_delete=models.PROTECT, related_name="attempts_log", null=True, blank=True
    )
    agent_wallet = models.ForeignKey("profitshare.AgentWallet", on_delete=models.PROTECT, related_name="payout_attempts")
    amount = models.BigIntegerField()
    path = models.CharField(max_length=8, choices=PayoutPath.choices, default=PayoutPath.TRANSFER)
    settles = models.BooleanField(default=False)
    withdraw_amount = models.BigIntegerField(default=0)
    legs = models.JSONField(default=list, blank=True)
    signature = models.CharField(max_length=88, unique=True)
    raw_transaction = models.BinaryField()
    blockhash = models.CharField(max_length=44)
    last_valid_block_height = models.BigIntegerField()
    destination_owner = models.CharField(max_length=44)
    destination_ata = models.CharField(max_length=44)
    status = models.CharField(max_length=10, choices=AttemptStatus.choices, default=AttemptStatus.PREPARED)
    error = models.TextField(blank=True, default="")
    slot = models.BigIntegerField(null=True, blank=True)
    fee_lamports = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="attempt_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(withdraw_amount__gte=0) & Q(withdraw_amount__lte=F("amount")),
                name="attempt_withdraw_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"attempt {self.signature[:12]}… ({self.status})"


class DriftActionKind(models.TextChoices):
    SETTLE = "settle", "Settle PnL"
    WITHDRAW = "withdraw", "Withdraw from Drift"


class DriftAction(models.Model):
    """A settle-PnL or withdraw transaction the engine signed for a distribution, recorded
    before it is sent (docs/design.md, "No chain action without a record").

    ``amount``: USDC base units asked of a withdraw (0 for a settle). ``delivered``: what the
    agent's USDC token account gained from a landed withdraw, once counted into the
    distribution's ``withdrawn`` (null while not known: a later run resolves the signature
    before withdrawing again, so a withdraw that landed late is used, not repeated).
    ``status`` as a payout attempt's: ``prepared`` (recorded; maybe sent, outcome not known),
    ``landed``, ``failed``, ``expired`` (its blockhash expired unlanded).
    """

    kind = models.CharField(max_length=8, choices=DriftActionKind.choices)
    distribution = models.ForeignKey(
        "profitshare.Distribution", on_delete=models.PROTECT, related_name="drift_actions"
    )
    iou = models.ForeignKey(
        "profitshare.IOU", on_delete=models.PROTECT, related_name="drift_actions", null=True, blank=True
    )
    agent_wallet = models.ForeignKey("profitshare.AgentWallet", on_delete=models.PROTECT, related_name="drift_actions")
    amount = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(null=True, blank=True)
    signature = models.CharField(max_length=88, unique=True)
    last_valid_block_height = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=AttemptStatus.choices, default=AttemptStatus.PREPARED)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="drift_action_amount_gte_0"),
            models.CheckConstraint(condition=Q(delivered__gte=0) | Q(delivered__isnull=True), name="drift_action_delivered_gte_0"),
        ]
        indexes = [models.Index(fields=["distribution", "kind", "status"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.signature[:12]}… ({self.status})"
