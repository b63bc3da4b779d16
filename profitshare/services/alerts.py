"""Raising admin alerts (DESIGN.md "Admins are told")."""

from __future__ import annotations

from typing import Any

from profitshare.models import Alert


def raise_alert(
    kind: str, subject: str, *, severity: str = Alert.Severity.WARNING, amount: int | None = None, **data: Any
) -> Alert:
    """Store an alert for admins. ``amount``: USDC base units when the alert is about money."""
    return Alert.objects.create(kind=kind, severity=severity, subject=subject[:200], amount=amount, data=data)
