"""The notification outbox: messages written with what they report, delivered later with
retries (docs/design.md, "Admins are told")."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


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
