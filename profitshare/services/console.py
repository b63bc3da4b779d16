"""Admin console actions that the engine's services do not already offer: acknowledging an
alert, and "retry now" for many IOUs at once. Each writes the audit trail."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from profitshare.models import Alert
from profitshare.services.audit import record_event
from profitshare.services.errors import Conflict, NotFound
from profitshare.tasks import enqueue_iou_retry


def acknowledge_alert(alert_id: int, *, actor: str) -> Alert:
    """Mark an alert acknowledged by ``actor`` (an admin). Raises ``NotFound``, ``Conflict``
    when it was already acknowledged (by whom is in the message)."""
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


def retry_ious_now(iou_ids, *, actor: str) -> dict:
    """Claim and queue a retry of each IOU (``tasks.enqueue_iou_retry``). Returns
    ``{"queued": [ids], "skipped": [ids]}``: skipped ones were not retryable any more or held
    by another worker."""
    queued, skipped = [], []
    for iou_id in iou_ids:
        (queued if enqueue_iou_retry(iou_id, actor=actor) else skipped).append(iou_id)
    return {"queued": queued, "skipped": skipped}
