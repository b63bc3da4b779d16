"""Admin alerts (docs/design.md, "Admins are told"): the one entry point that raises them, the
rules that give each kind its severity and whether admins are messaged, and acknowledging."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from profitshare.models import Alert
from profitshare.money import format_usdc
from profitshare.services.audit import record_event
from profitshare.services.errors import Conflict, NotFound
from profitshare.services.notifications import enqueue

logger = logging.getLogger(__name__)

DEFAULT_RULE = {"severity": Alert.Severity.WARNING, "notify": True}


def alert_rule(kind: str) -> dict[str, Any]:
    """The rule of an alert kind from ``settings.QV_ALERT_RULES``: ``{"severity": "info" |
    "warning" | "critical", "notify": bool}``; an unknown kind is a notifying warning."""
    rule = {**DEFAULT_RULE, **settings.QV_ALERT_RULES.get(kind, {})}
    if rule["severity"] not in Alert.Severity.values:
        rule["severity"] = Alert.Severity.WARNING
    return rule


def raise_alert(kind: str, subject: str, *, amount: int | None = None, **data: Any) -> Alert:
    """Raise an admin alert by its kind's rule: the ``Alert`` row with the rule's severity, a
    log line, and, when the rule notifies, one outbox message per admin chat
    (``QV_TELEGRAM_ADMIN_CHAT_IDS``). ``amount``: USDC base units when the alert is about
    money; ``data``: JSON-serializable facts. Call inside the transaction of the change it
    reports, so the alert and its messages commit (or roll back) with it."""
    rule = alert_rule(kind)
    row = Alert.objects.create(kind=kind, severity=rule["severity"], subject=subject[:200], amount=amount, data=data)
    logger.warning("alert %s: %s", kind, subject, extra={"alert": kind, "severity": row.severity, "amount": amount})
    if rule["notify"]:
        for chat_id in settings.QV_TELEGRAM_ADMIN_CHAT_IDS:
            enqueue(chat_id, alert_text(row), dedupe_key=f"alert:{row.pk}:{chat_id}")
    return row


def alert_text(row: Alert) -> str:
    """The admin message of an alert: ``[SEVERITY] kind: subject (amount USDC)``."""
    text = f"[{row.severity.upper()}] {row.kind}: {row.subject}"
    if row.amount is not None:
        text += f" ({format_usdc(row.amount, grouping=False, trim=True)} USDC)"
    return text


def queue_alert_notices(*, since_hours: int = 24, limit: int = 500) -> int:
    """Queue admin messages for alerts of the last ``since_hours`` whose kind's rule notifies
    and that have none yet (admin chats configured after the alert was raised, a rule changed
    to notify). Returns how many messages were queued."""
    chats = settings.QV_TELEGRAM_ADMIN_CHAT_IDS
    if not chats:
        return 0
    since = timezone.now() - timedelta(hours=since_hours)
    queued = 0
    for row in Alert.objects.filter(created_at__gte=since).order_by("id")[:limit]:
        if not alert_rule(row.kind)["notify"]:
            continue
        for chat_id in chats:
            if enqueue(chat_id, alert_text(row), dedupe_key=f"alert:{row.pk}:{chat_id}"):
                queued += 1
    return queued


def acknowledge_alert(alert_id: int, *, actor: str) -> Alert:
    """Mark an alert acknowledged by ``actor`` (an admin), with an audit event. Raises
    ``NotFound``, ``Conflict`` when it was already acknowledged (by whom is in the message)."""
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
