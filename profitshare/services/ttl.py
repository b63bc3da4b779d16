"""The IOU time limit (see docs/design.md, "TTL frees the subscriber, not the debt").

After ``QV_IOU_TTL_DAYS`` (the IOU's ``expires_at``, set by the engine at creation) an open IOU
becomes ``expired``: it no longer blocks the subscriber's withdrawal or bot deletion
(``guards.guard``), but stays owed — the retry sweep keeps retrying expired IOUs — and only an
admin voids it, with a reason. Each expiry writes an audit event, a JSON log line and an
``iou_expired`` alert (rule in ``QV_ALERT_RULES``).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from profitshare.models import IOU, IouStatus
from profitshare.services import webhooks
from profitshare.services.alerts import raise_alert
from profitshare.services.audit import record_event

ACTOR = "schedule:iou-ttl"


def expire_due_ious(now=None, *, limit: int = 500) -> list[int]:
    """Mark open IOUs whose ``expires_at`` is at or before ``now`` (default: the current time)
    ``expired``; returns their ids, oldest first.

    IOUs being retried (``processing``) are skipped: the engine gives them back as ``expired``
    when the retry falls short again. Rows locked by another worker are skipped
    (``SKIP LOCKED``) and taken by the next run. Per IOU: ``open -> expired`` audit event
    (remaining base units, ``expires_at``), a state-change log line and an ``iou_expired``
    alert with the remaining amount. No error is raised for an empty run.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            IOU.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)
            .select_related("subscription", "creator", "leg")
            .filter(status=IouStatus.OPEN, expires_at__lte=now)
            .order_by("expires_at", "id")[:limit]
        )
        for iou in due:
            iou.status = IouStatus.EXPIRED
            iou.save(update_fields=["status"])
            facts = {
                "remaining": iou.remaining, "expires_at": iou.expires_at.isoformat(),
                "subscription": iou.subscription.subscription_id, "distribution": iou.distribution_id,
            }
            record_event("iou", iou.pk, actor=ACTOR, from_status=IouStatus.OPEN, to_status=IouStatus.EXPIRED,
                         reason="TTL reached: no longer blocks, still owed", **facts)
            raise_alert("iou_expired",
                        f"IOU {iou.pk} of {iou.subscription.subscription_id} expired: {iou.remaining} still owed to "
                        f"{iou.recipient_wallet} ({iou.recipient_role})",
                        amount=iou.remaining, iou=iou.pk, subscription=iou.subscription.subscription_id,
                        role=iou.recipient_role)
        webhooks.ious_expired(due)
    return [iou.pk for iou in due]
