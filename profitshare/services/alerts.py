"""Raising admin alerts (docs/design.md, "Admins are told")."""

from __future__ import annotations

from typing import Any

from profitshare.models import Alert


def raise_alert(
    kind: str, subject: str, *, severity: str = Alert.Severity.WARNING, amount: int | None = None, **data: Any
) -> Alert:
    """Store an alert for admins. ``amount``: USDC base units when the alert is about money."""
    return Alert.objects.create(kind=kind, severity=severity, subject=subject[:200], amount=amount, data=data)


def acknowledge_alert(alert_id: int, *, actor: str) -> Alert:
    """Mark an alert acknowledged by ``actor`` (an admin), with an audit event. Raises
    ``NotFound``, ``Conflict`` when it was already acknowledged (by whom is in the message)."""
    from django.db import transaction
    from django.utils import timezone

    from profitshare.services.audit import record_event
    from profitshare.services.errors import Conflict, NotFound

    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
        if alert is None:
            raise NotFound("alert", str(alert_id))
        if alert.acknowledged_at is not None:
            raise Conflict(f"alert {alert_id} was already acknowledged by {alert.acknowledged_by}")
        alert.acknowledged_by, alert.acknowledged_at = actor, timezone.now()
        alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
        record_event("alert", alert.pk, actor=actor, from_status="new", to_status="acknowledged", kind=alert.kind)
    return alert
