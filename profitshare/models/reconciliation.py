"""Reconciliation: each run's report, how far each agent wallet's history was read, and the
landed payouts already read back (docs/design.md, "Reconciliation")."""

from __future__ import annotations

from django.db import models


class ReconciliationReport(models.Model):
    """One run of the reconciliation: ``checked`` landed payouts read back from
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
