"""Webhooks to the trading platform: an outbox of events, written in the transaction of the
state change each reports, and one delivery row per configured endpoint (README "Webhooks")."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class WebhookEventType(models.TextChoices):
    DISTRIBUTION_PAID = "distribution.paid", "A payout landed"
    DISTRIBUTION_OWED = "distribution.owed", "A share became (partly) owed"
    IOU_OPENED = "iou.opened", "An IOU opened"
    IOU_PAID = "iou.paid", "An IOU was paid in full"
    IOU_VOIDED = "iou.voided", "An IOU was voided by an admin"
    IOU_EXPIRED = "iou.expired", "An IOU passed its TTL (still owed, no longer blocking)"
    SUBSCRIPTION_DELINQUENT = "subscription.delinquent", "A subscription moved funds out while owing"
    SUBSCRIPTION_CLEARED = "subscription.cleared", "A delinquent subscription paid its debts"
    BOT_TERMS_SCHEDULED = "bot.terms_scheduled", "A rate increase or policy change waits for its timelock"


class WebhookEvent(models.Model):
    """One fact for the trading platform. ``uuid``: the public event id (``X-QV-Event-Id``, the
    same on every redelivery); ``ordering_key``: the external subscription id the event is
    about (deliveries of one key reach an endpoint in ``id`` order); ``data``: ids, amounts in
    USDC base units, reason codes and signatures. Never updated."""

    uuid = models.UUIDField(unique=True)
    type = models.CharField(max_length=32, choices=WebhookEventType.choices)
    ordering_key = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(type__in=WebhookEventType.values), name="webhook_type_known")]

    def __str__(self) -> str:
        return f"{self.type} {self.uuid}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """An event's delivery to one endpoint. ``attempts`` POSTs so far, ``last_status_code``
    (None: no HTTP answer) and ``last_error`` of the newest; ``next_attempt_at``: when a pending
    delivery is due; ``give_up_at``: after this a failing delivery becomes ``failed`` (3 days
    from its creation or its last redelivery); ``ordering_key`` is the event's (the in-order
    claim reads it without a join)."""

    # the (event, endpoint) unique index serves lookups by event: no second index on the key
    event = models.ForeignKey(WebhookEvent, on_delete=models.PROTECT, related_name="deliveries", db_index=False)
    endpoint = models.CharField(max_length=500)
    ordering_key = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField()
    give_up_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once_per_endpoint")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_due"),
            models.Index(fields=["endpoint", "ordering_key", "event"], condition=Q(status="pending"),
                         name="webhook_pending_queue"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.event_id} to {self.endpoint} ({self.status})"
