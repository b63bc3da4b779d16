"""Finishing work whose worker died or timed out, from the chain's answer
(docs/design.md, "Stale work is decided by the chain").

A distribution left ``processing`` or an IOU left ``processing`` past
``QV_STALE_ATTEMPT_SECONDS`` is run again through the engine under the agent wallet's lock
(skipped while another worker holds it). A distribution still ``pending`` that long after
intake (its task was lost: a broker flushed, a worker killed before it took it) is run too. The engine first resolves every recorded attempt by its
signature's status — landed is paid, failed is failed, expired unlanded may be re-signed, still
live is re-broadcast with the same bytes — so nothing is reset to pending blind.

Each run also follows the chain for attempts recorded expired or failed within
``QV_RECONCILE_WINDOW_HOURS`` whose distribution still owes (docs/design.md, "The ledger follows
the chain"): one the chain says landed is applied as paid under its wallet's lock.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from profitshare.chain.gateway import ChainGateway, get_gateway
from profitshare.models import IOU, Distribution, DistributionStatus, IouStatus
from profitshare.services import engine
from profitshare.services.audit import RESOLVER
from profitshare.services.engine import follow
from profitshare.services.locks import LockTimeout

logger = logging.getLogger(__name__)


def resolve_stale(*, gateway: ChainGateway | None = None, now=None, limit: int = 100) -> dict[str, int]:
    """Resolve stale work: processing distributions and IOUs, and pending distributions whose
    task never ran, older than ``QV_STALE_ATTEMPT_SECONDS`` before ``now``; at most ``limit``
    of each kind, oldest first; then attempts recorded expired or failed that the chain says
    landed are applied (``follow.sweep``). Returns ``{"distributions", "ious", "landed_per_chain",
    "busy"}`` (``busy``: skipped because another worker holds the agent wallet; the next run
    tries again)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.QV_STALE_ATTEMPT_SECONDS)
    gateway = gateway or get_gateway()
    counts = {"distributions": 0, "ious": 0, "landed_per_chain": 0, "busy": 0}
    stale = Distribution.objects.filter(
        Q(status=DistributionStatus.PROCESSING, updated_at__lt=cutoff)
        | Q(status=DistributionStatus.PENDING, created_at__lt=cutoff)
    ).order_by("id")
    for distribution_id in stale.values_list("pk", flat=True)[:limit]:
        try:
            engine.process_distribution(distribution_id, gateway=gateway, actor=RESOLVER, lock_timeout=0)
            counts["distributions"] += 1
        except LockTimeout:
            counts["busy"] += 1
    stale_ious = IOU.objects.filter(status=IouStatus.PROCESSING, claimed_at__lt=cutoff).order_by("claimed_at", "id")
    for iou_id in stale_ious.values_list("pk", flat=True)[:limit]:
        try:
            engine.retry_iou(iou_id, gateway=gateway, actor=RESOLVER, lock_timeout=0)
            counts["ious"] += 1
        except LockTimeout:
            counts["busy"] += 1
    since = now - timedelta(hours=settings.QV_RECONCILE_WINDOW_HOURS)
    followed = follow.sweep(gateway=gateway, actor=RESOLVER, since=since, limit=limit)
    counts["landed_per_chain"] += followed["applied"]
    counts["busy"] += followed["busy"]
    if any(counts.values()):
        logger.info("resolver: %s", counts)
    return counts
