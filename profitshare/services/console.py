"""Admin console actions that the engine's services do not already offer: "retry now" for many
IOUs at once (acknowledging an alert is ``alerts.acknowledge_alert``). Each writes the audit
trail."""

from __future__ import annotations

from profitshare.tasks import enqueue_iou_retry


def retry_ious_now(iou_ids, *, actor: str) -> dict:
    """Claim and queue a retry of each IOU (``tasks.enqueue_iou_retry``). Returns
    ``{"queued": [ids], "skipped": [ids]}``: skipped ones were not retryable any more or held
    by another worker."""
    queued, skipped = [], []
    for iou_id in iou_ids:
        (queued if enqueue_iou_retry(iou_id, actor=actor) else skipped).append(iou_id)
    return {"queued": queued, "skipped": skipped}
