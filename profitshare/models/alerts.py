"""Alerts for admins: what needs a person's attention."""

from __future__ import annotations

from django.db import models


class Alert(models.Model):
    """An admin alert (docs/design.md, "Admins are told"): IOU created/expired/voided, delinquency,
    reconciliation mismatch, invalid creator wallet, repeated RPC failure. ``amount`` in USDC
    base units when the alert is about money."""

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    kind = models.CharField(max_length=40, db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    subject = models.CharField(max_length=200)
    amount = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}"
