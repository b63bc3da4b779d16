"""Operations: reconciliation reports, the notification outbox and delinquency watches."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ReconciliationReport(models.Model):
    """One run of the reconciliation (seed 000 #10): ``checked`` landed payouts read back from
    the chain, ``matched`` / ``mismatched`` of them, ``signatures_scanned`` agent-wallet
    signatures looked at, ``unrecorded`` payouts found on chain without a distribution.
    ``mismatches``: a list of ``{"kind", "signature", "ours", "chain"}`` (both sides)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    checked = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    mismatched = models.PositiveIntegerField(default=0)
    signatures_scanned = models.PositiveIntegerField(default=0)
    unrecorded = models.PositiveIntegerField(default=0)
    mismatches = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"reconciliation {self.started_at:%Y-%m-%d %H:%M} {self.matched}/{self.checked}"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class OutboxMessage(models.Model):
    """A message to deliver (Telegram): written in the transaction of what it reports, delivered
    later by a task with retries, so an outage loses nothing and never blocks a payout.
    ``dedupe_key``: one message per fact (e.g. ``payout:<signature>``)."""

    channel = models.CharField(max_length=16, default="telegram")
    chat_id = models.CharField(max_length=64)
    text = models.TextField()
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    status = models.CharField(max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [models.CheckConstraint(condition=~Q(chat_id=""), name="outbox_chat_id_set")]

    def __str__(self) -> str:
        return f"outbox {self.pk} to {self.chat_id} ({self.status})"


class WatchBaseline(models.TextChoices):
    IOU_OPENED = "iou_opened", "Slot read when the IOU opened"
    WATCH_STARTED = "watch_started", "Slot read when the schedule started the watch"


class DelinquencyWatch(models.Model):
    """Watching one subscription's agent wallet while it owes (seed 001 #5).

    ``since_slot``: the chain's slot when the first blocking IOU opened (read right after the
    IOU's transaction committed, ``baseline = iou_opened``) or, when that read failed, when the
    schedule started the watch (``watch_started``); ``opened_at``: when that IOU opened (on a
    cluster whose block times are wall time, transactions from then on are examined too).
    ``last_signature`` / ``last_slot``: the newest transaction already examined (each scan reads
    only what is newer). ``last_scan_at``: when the wallet was last read."""

    subscription = models.OneToOneField(
        "profitshare.Subscription", on_delete=models.CASCADE, related_name="delinquency_watch"
    )
    since_slot = models.BigIntegerField()
    baseline = models.CharField(max_length=16, choices=WatchBaseline.choices, default=WatchBaseline.WATCH_STARTED)
    opened_at = models.DateTimeField(null=True, blank=True)
    last_signature = models.CharField(max_length=88, blank=True, default="")
    last_slot = models.BigIntegerField(null=True, blank=True)
    last_scan_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"watch {self.subscription_id} since slot {self.since_slot}"


class ReconciliationBookmark(models.Model):
    """How far the reconciliation has read one agent wallet's history: ``last_signature`` (and
    its ``last_slot``) is the newest signature already examined; the next run asks
    ``getSignaturesForAddress`` only for what is newer (``until``)."""

    agent_wallet = models.OneToOneField(
        "profitshare.AgentWallet", on_delete=models.CASCADE, related_name="reconciliation_bookmark"
    )
    last_signature = models.CharField(max_length=88)
    last_slot = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"bookmark {self.agent_wallet_id} at {self.last_signature[:12]}…"


class ReconciledAttempt(models.Model):
    """A landed payout attempt the reconciliation has read back (once): ``matched`` or not,
    in which ``report``. Later runs skip it."""

    attempt = models.OneToOneField(
        "profitshare.PayoutAttempt", on_delete=models.CASCADE, primary_key=True, related_name="reconciliation"
    )
    report = models.ForeignKey(ReconciliationReport, on_delete=models.CASCADE, related_name="attempts")
    matched = models.BooleanField()
    checked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"reconciled attempt {self.attempt_id} ({'matched' if self.matched else 'mismatch'})"

