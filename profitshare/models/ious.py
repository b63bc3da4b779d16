"""IOUs: what could not be paid, kept until paid or voided by an admin."""

from __future__ import annotations

from enum import nonmember

from django.db import models
from django.db.models import F, Q


class IouReason(models.TextChoices):
    """Why a payout could not happen (the chain gateway's error codes)."""

    INSUFFICIENT_SOL = "insufficient_sol", "Agent wallet lacks SOL for fees and rent"
    WITHDRAW_SHORT = "withdraw_short", "Drift withdraw delivered less than asked"
    WITHDRAW_FAILED = "withdraw_failed", "Drift withdraw failed"
    SETTLE_FAILED = "settle_failed", "Drift settle PnL failed"
    INVALID_CREATOR_WALLET = "invalid_creator_wallet", "Creator wallet address is invalid"
    RPC_UNAVAILABLE = "rpc_unavailable", "RPC unavailable"
    BLOCKHASH_EXPIRED = "blockhash_expired", "Transfer expired unlanded"
    TRANSFER_FAILED = "transfer_failed", "Transfer failed on chain"
    INSUFFICIENT_USDC = "insufficient_usdc", "Agent token account lacks USDC"
    NO_TOKEN_ACCOUNT = "no_token_account", "Recipient has no USDC token account"


class IouStatus(models.TextChoices):
    """An IOU's state, and the named groups every query uses (docs/design.md, "IOU states"):

    * ``ACTIVE`` (open, processing, expired): still owed;
    * ``BLOCKING`` (open, processing): blocks the subscriber's exits while within the TTL
      (``expires_at`` in the future; docs/design.md, "Debts block exits");
    * ``RETRYABLE`` (open, expired): may be claimed for a retry;
    * ``FINAL`` (paid, voided): nothing more happens to it.

    The groups are frozensets of the status values, not choices."""

    OPEN = "open", "Open"
    PROCESSING = "processing", "Processing"
    EXPIRED = "expired", "Expired (no longer blocks; still owed)"
    PAID = "paid", "Paid"
    VOIDED = "voided", "Voided by an admin"

    ACTIVE = nonmember(frozenset({"open", "processing", "expired"}))
    BLOCKING = nonmember(frozenset({"open", "processing"}))
    RETRYABLE = nonmember(frozenset({"open", "expired"}))
    FINAL = nonmember(frozenset({"paid", "voided"}))

    @classmethod
    def choices_of(cls, group: frozenset[str]) -> list[tuple[str, str]]:
        """``(value, label)`` of the statuses in ``group``, in declaration order (for forms)."""
        return [(value, label) for value, label in cls.choices if value in group]


class IOU(models.Model):
    """An unpaid leg of a distribution (one IOU per recipient): ``amount`` USDC base units,
    ``paid_amount`` of it paid by retries so far. ``creator`` is the bot's creator whose
    subscriber owes it, whoever the leg pays. The IOUs of one distribution are retried
    together: a payout pays every owed leg in one transaction. Open and processing IOUs block the subscriber's withdrawal and bot
    deletion until ``expires_at`` (the TTL); expired ones stay owed and are still collected.
    Claims for retry use ``SELECT … FOR UPDATE SKIP LOCKED`` and set ``claimed_at``.
    """

    distribution = models.ForeignKey("profitshare.Distribution", on_delete=models.PROTECT, related_name="ious")
    subscription = models.ForeignKey("profitshare.Subscription", on_delete=models.PROTECT, related_name="ious")
    creator = models.ForeignKey("profitshare.CreatorWallet", on_delete=models.PROTECT, related_name="ious")
    #: The leg of the distribution this IOU owes (its recipient: ``leg.wallet``, ``leg.role``);
    #: null only on IOUs recorded without one, which owe the creator.
    leg = models.ForeignKey(
        "profitshare.DistributionLeg", on_delete=models.PROTECT, related_name="ious", null=True, blank=True
    )
    amount = models.BigIntegerField()
    paid_amount = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=32, choices=IouReason.choices)
    status = models.CharField(max_length=12, choices=IouStatus.choices, default=IouStatus.OPEN)
    attempts = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    #: Lamports the agent wallet needs for the payout's fees and rents, when the reason is
    #: ``insufficient_sol`` (what the subscriber must top up to; null otherwise).
    sol_needed = models.BigIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True, default="")
    voided_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="iou_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(paid_amount__gte=0, paid_amount__lte=F("amount")), name="iou_paid_within_amount"
            ),
            models.CheckConstraint(
                condition=~Q(status="voided") | ~Q(void_reason=""), name="iou_void_needs_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_retry_at"]),
            models.Index(fields=["subscription", "status"]),
            models.Index(fields=["creator", "status"]),
        ]

    def __str__(self) -> str:
        return f"IOU {self.pk} {self.remaining} ({self.status})"

    @property
    def remaining(self) -> int:
        """Base units still owed on this IOU."""
        return self.amount - self.paid_amount

    @property
    def recipient_role(self) -> str:
        """The ``LegRole`` value of whom this IOU owes: its leg's role; ``creator`` for an IOU
        recorded without a leg (reads ``leg``)."""
        return self.leg.role if self.leg_id is not None else "creator"

    @property
    def recipient_wallet(self) -> str:
        """The wallet (base58) this IOU owes: its leg's; the creator's own wallet for an IOU
        recorded without a leg (reads ``leg`` or ``creator``)."""
        return self.leg.wallet if self.leg_id is not None else self.creator.address
