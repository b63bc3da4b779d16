"""Raising admin alerts (DESIGN.md "Admins are told")."""

from __future__ import annotations

from typing import Any

from profitshare.models import Alert


def raise_alert(
    kind: str, subject: str, *, severity: str = Alert.Severity.WARNING, amount: int | None = None, **data: Any
) -> Alert:
    """Store an alert for admins. ``amount``: USDC base units when the alert is about money."""
    return Alert.objects.create(kind=kind, severity=severity, subject=subject[:200], amount=amount, data=data)


def acknowledge_alert(alert_id: int, *, actor: str) -> Alert:
    """Mark an alert seen by ``actor`` (an admin). Idempotent: the first acknowledgement stays.
    Raises ``Alert.DoesNotExist``."""
    from django.db import transaction
    from django.utils import timezone

    from profitshare.services.audit import record_event

    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        if alert.acknowledged_at is None:
            alert.acknowledged_by, alert.acknowledged_at = actor, timezone.now()
            alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
            record_event("alert", alert.pk, actor=actor, from_status="new", to_status="acknowledged")
    return alert
