"""django-q2 task entry points (thin: the work is in ``profitshare.services``).

* ``process_distribution_task``: one per close that owes something (enqueued by intake);
* ``retry_due_ious_task``: the IOU retry sweep (schedule, every minute);
* ``resolve_stale_task``: the stale-work resolver (schedule, every minute);
* ``deliver_webhooks_task``: webhook deliveries (queued after each commit that emits events,
  and a schedule every minute);
* ``flush_carries_task``: carries of ended subscriptions flushed once payable, and carries
  whose recipient's token account exists now (schedule, hourly).

Schedules are created by ``python manage.py setup_schedules`` (idempotent; ``make run`` runs it).
"""

from __future__ import annotations

import functools
import time

from django_q.brokers import get_broker
from django_q.tasks import async_task

from profitshare.services import (
    alerts,
    delinquency,
    engine,
    health,
    ious,
    metrics,
    notifications,
    reconciliation,
    resolver,
    siws,
    subscription_end,
    telegram_links,
    ttl,
    webhook_delivery,
)

PAYOUT_GROUP = "payouts"


@functools.cache
def _broker():
    """One django-q2 broker per process: building one per enqueue (a new Redis connection
    pool each time) cost ~4 ms per close; reused, ~0.3 ms."""
    return get_broker()


def enqueue_distribution(distribution_id: int) -> None:
    """Queue the payout of one distribution (called after the intake commits).

    Its success is not saved as a django-q2 result (``save=False``; failures still are): the
    outcome lives in the ledger and the audit trail, and with ``save_limit`` set django-q2's
    monitor prunes results by loading every saved success row for each one it saves, which
    cost more CPU than the payout itself under a burst."""
    async_task(
        "profitshare.tasks.process_distribution_task", distribution_id, group=PAYOUT_GROUP, broker=_broker(),
        save=False,
    )


DRAIN_SECONDS = 5.0


def process_distribution_task(distribution_id: int) -> int:
    """Pay this distribution and, batch after batch, the other pending ones (one per free agent
    wallet per batch) until none is left or ``DRAIN_SECONDS`` passed; returns how many were
    processed. Under a burst the first tasks drain the backlog in large batches and the later
    ones find nothing to do. A distribution whose wallet is busy is paid by a later batch or the
    resolver."""
    if not engine.is_pending(distribution_id):
        return 0  # a draining batch already took it (the common case under a burst): one query
    deadline = time.monotonic() + DRAIN_SECONDS
    processed = len(engine.process_pending(distribution_id))
    while time.monotonic() < deadline:
        batch = engine.process_pending()
        if not batch:
            break
        processed += len(batch)
    return processed


def enqueue_iou_retry(iou_id: int, *, actor: str) -> bool:
    """Claim one IOU now (whatever its backoff) and queue its retry ("retry now" in the admin
    console). Returns False when it is not retryable or another worker holds it."""
    if not ious.claim_iou(iou_id, actor=actor):
        return False
    async_task("profitshare.tasks.retry_claimed_iou_task", iou_id, actor, group=PAYOUT_GROUP, broker=_broker())
    return True


def enqueue_iou_retries(iou_ids, *, actor: str) -> dict[str, list[int]]:
    """``enqueue_iou_retry`` for each IOU (the console's bulk retry). Returns ``{"queued":
    [ids], "skipped": [ids]}``: skipped ones were not retryable any more or held by another
    worker."""
    queued, skipped = [], []
    for iou_id in iou_ids:
        (queued if enqueue_iou_retry(iou_id, actor=actor) else skipped).append(iou_id)
    return {"queued": queued, "skipped": skipped}


def retry_claimed_iou_task(iou_id: int, actor: str = "engine") -> str:
    """Retry an IOU already claimed (status processing); returns its status afterwards."""
    return engine.retry_iou(iou_id, actor=actor).status


def retry_due_ious_task(limit: int = 50) -> int:
    """Claim due IOUs (SKIP LOCKED) and retry them in batches (one per agent wallet per
    round); returns how many were claimed. IOUs owed for lack of SOL whose agent wallet has been
    topped up, and those owed for lack of a recipient's token account that now exists, are made
    due first."""
    gateway = engine.default_gateway()
    ious.wake_topped_up(gateway)
    ious.wake_accounts_opened(gateway)
    claimed = ious.claim_due_ious(limit=limit)
    engine.retry_ious(claimed)
    return len(claimed)


def flush_carries_task(limit: int = 200) -> int:
    """Flush what ended subscriptions still carry once it is payable (docs/design.md, "A
    subscription ends"), and the carries of running subscriptions whose recipient's token
    account exists now ("Dust is carried per recipient"): a flush distribution per
    subscription, its payout queued after commit; returns how many were made (0 when the token
    accounts could not be read: nothing changed)."""
    gateway = engine.default_gateway()
    made = subscription_end.flush_ended_carries(gateway, limit=limit, on_commit=enqueue_distribution)
    made += subscription_end.flush_opened_accounts(gateway, limit=limit, on_commit=enqueue_distribution)
    return len(made)


def resolve_stale_task() -> dict[str, int]:
    """Finish stale processing work from signature statuses."""
    return resolver.resolve_stale()


# --- operations -------------------------------------------------------------------------------------
def expire_ious_task() -> int:
    """TTL sweep (docs/design.md, "TTL frees the subscriber, not the debt"): open IOUs past
    ``expires_at`` become expired; returns how many."""
    return len(ttl.expire_due_ious())


def reconcile_task() -> dict:
    """Reconciliation: ledger vs chain; returns the report's counts."""
    report = reconciliation.reconcile(gateway=engine.default_gateway())
    return {"checked": report.checked, "matched": report.matched, "mismatched": report.mismatched,
            "unrecorded": report.unrecorded, "error": report.error}


def sync_metrics_before_task(sender, **kwargs) -> None:
    """django-q2 ``pre_execute`` receiver (connected in ``ProfitShareConfig.ready``): mirror
    this worker's RPC error counts into ``qv_rpc_errors_total`` before each task."""
    metrics.sync_rpc_errors()


def detect_delinquency_task() -> dict[str, int]:
    """Delinquency watch: mark subscriptions that moved funds out while owing."""
    return delinquency.detect_delinquency(gateway=engine.default_gateway())


def deliver_notifications_task() -> dict[str, int]:
    """Outbox: link chats that sent their one-time code, queue payout, creator and alert
    notices, then send what is due."""
    linked = telegram_links.read_bot_updates()  # chats that sent their link code
    queued = (notifications.queue_payout_notices() + notifications.queue_creator_notices()
              + alerts.queue_alert_notices())
    counts = notifications.deliver_due()
    return {"queued": queued, "sent": counts.sent, "retried": counts.retried, "failed": counts.failed,
            "linked": linked.linked}


def watch_rpc_failures_task() -> bool:
    """Alert admins on repeated RPC failure (docs/design.md, "Repeated RPC failure")."""
    return health.alert_on_repeated_rpc_failures()


# --- webhooks ---------------------------------------------------------------------------------------
def deliver_webhooks_task() -> dict[str, int]:
    """Deliver due webhook deliveries (in order per subscription; SKIP LOCKED across workers);
    queued by ``webhooks.queue_delivery`` after each commit that wrote events, and scheduled."""
    counts = webhook_delivery.deliver_due()
    return {"delivered": counts.delivered, "retried": counts.retried, "failed": counts.failed}


def prune_sign_in_nonces_task() -> int:
    """Delete Sign-In With Solana nonces past their expiry (used or not); returns how many."""
    return siws.prune_expired_nonces()
