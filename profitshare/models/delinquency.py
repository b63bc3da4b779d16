"""Delinquency watches: one subscription's agent wallet watched while it owes (docs/design.md,
"Delinquency")."""

from __future__ import annotations

from django.db import models


class WatchBaseline(models.TextChoices):
    IOU_OPENED = "iou_opened", "Slot read when the IOU opened"
    WATCH_STARTED = "watch_started", "Slot read when the schedule started the watch"


class DelinquencyWatch(models.Model):
    """Watching one subscription's agent wallet while it owes.

    ``since_slot``: the chain's slot when the first blocking IOU opened (read right after the
    IOU's transaction committed, ``baseline = iou_opened``) or, when that read failed, when the
    schedule started the watch (``watch_started``); ``opened_at``: when that IOU opened (on a
    cluster whose block times are wall time, transactions from then on are examined too).
    ``last_signature`` / ``last_slot``: the newest transaction already examined (each scan reads
    only what is newer). ``last_scan_at``: when the wallet was last read. ``outflow_signature``
    / ``outflow_at``: the first outflow found after the subscription had ended (an ended
    subscription cannot also be ``delinquent``: the watch records it, and stops scanning)."""

    subscription = models.OneToOneField(
        "profitshare.Subscription", on_delete=models.CASCADE, related_name="delinquency_watch"
    )
    since_slot = models.BigIntegerField()
    baseline = models.CharField(max_length=16, choices=WatchBaseline.choices, default=WatchBaseline.WATCH_STARTED)
    opened_at = models.DateTimeField(null=True, blank=True)
    last_signature = models.CharField(max_length=88, blank=True, default="")
    last_slot = models.BigIntegerField(null=True, blank=True)
    last_scan_at = models.DateTimeField(null=True, blank=True)
    outflow_signature = models.CharField(max_length=88, blank=True, default="")
    outflow_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"watch {self.subscription_id} since slot {self.since_slot}"
