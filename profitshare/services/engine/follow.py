"""The ledger follows the chain (docs/design.md, "The ledger follows the chain").

A payout attempt the ledger recorded ``expired`` or ``failed`` that the chain says landed is
applied as paid, once, under its agent wallet's lock: the attempt becomes ``landed``, the
distribution is credited (at most what it still owes), its IOU closes, the audit trail says
"landed per chain", and a critical ``landed_per_chain`` alert says whether a second payout was
signed for the same distribution after it and whether that one landed too (money paid twice).

Three readers find such attempts: the engine before it signs anything for a distribution
(``recheck``, from ``resolve_attempts``: no second payout is ever sent beside a landed one), the
stale-work resolver (``sweep``: attempts of distributions that still owe) and reconciliation's
agent-wallet scan (``follow_chain`` with the signatures it saw landed). A landing is proven by
any endpoint's confirmed status; only "not landed" needs a caught-up node (``BatchOps.decide``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from profitshare.chain.errors import ChainError
from profitshare.chain.gateway import ChainGateway
from profitshare.models import IOU, AttemptStatus, IouStatus, PayoutAttempt
from profitshare.services.alerts import raise_alert
from profitshare.services.engine.batch import Batch, refresh
from profitshare.services.engine.ledger import apply_landed
from profitshare.services.locks import agent_wallet_locks

logger = logging.getLogger(__name__)

#: What the ledger may have recorded for an attempt that the chain can still prove landed.
RECORDED_UNLANDED = (AttemptStatus.EXPIRED, AttemptStatus.FAILED)
#: The audit reason of a landing the ledger learned from the chain after deciding otherwise.
REASON = "landed per chain"


def recheck(batch: Batch) -> None:
    """Before the engine signs anything for ``batch`` (whose wallet locks the caller holds):
    ask the chain about its distributions' attempts recorded expired or failed and apply those
    that landed. Items then fully paid, or whose claimed IOU closed, leave the batch. When the
    chain cannot be asked, the items with such attempts leave the batch untouched (nothing new
    is signed beside an attempt that may have paid). One query when there are none."""
    ids = [item.dist.pk for item in batch.items]
    attempts = list(PayoutAttempt.objects.filter(distribution__in=ids, status__in=RECORDED_UNLANDED))
    if not attempts:
        return
    try:
        applied = _follow(batch, attempts)
    except ChainError as exc:
        logger.info("earlier attempts not re-read (%s): their distributions wait", exc)
        unread = {a.distribution_id for a in attempts}
        for item in batch.items:
            if item.dist.pk in unread:
                item.stop()
        return
    if not applied:
        return
    items = [item for item in batch.items if item.dist.pk in applied]
    refresh(items)
    ious = {i.pk: i.status for i in IOU.objects.filter(pk__in=[item.iou.pk for item in items if item.iou])}
    for item in items:
        if item.dist.owed == 0 or (item.iou is not None and ious.get(item.iou.pk) != IouStatus.PROCESSING):
            item.stop()


def follow_chain(attempts: Iterable[PayoutAttempt], *, gateway: ChainGateway, actor: str) -> dict[str, int]:
    """Re-read ``attempts`` (any agent wallets) under their wallets' locks and apply those still
    recorded expired or failed that the chain says landed. Busy wallets are skipped (the next
    run tries again). Returns ``{"applied": n, "busy": wallets skipped}``. Raises the gateway's
    ``ChainError`` when the statuses cannot be read."""
    by_wallet: dict[str, list[int]] = {}
    for attempt in attempts:
        by_wallet.setdefault(attempt.agent_wallet.pubkey, []).append(attempt.pk)
    if not by_wallet:
        return {"applied": 0, "busy": 0}
    with agent_wallet_locks(list(by_wallet), timeout=0) as held:
        pks = [pk for wallet in held for pk in by_wallet[wallet]]
        fresh = list(PayoutAttempt.objects.filter(pk__in=pks, status__in=RECORDED_UNLANDED))  # under the locks
        applied = _follow(Batch(gateway, actor), fresh) if fresh else set()
    return {"applied": len(applied), "busy": len(by_wallet) - len(held)}


def sweep(*, gateway: ChainGateway, actor: str, since: datetime, limit: int = 500) -> dict[str, int]:
    """The resolver's pass: attempts created since ``since`` and recorded expired or failed
    whose distribution still owes, oldest first, at most ``limit``, followed to the chain
    (``follow_chain``). Returns its counts; a chain error counts nothing (logged; the next run
    tries again)."""
    attempts = (
        PayoutAttempt.objects.filter(status__in=RECORDED_UNLANDED, created_at__gte=since, distribution__owed__gt=0)
        .select_related("agent_wallet").order_by("id")[:limit]
    )
    try:
        return follow_chain(list(attempts), gateway=gateway, actor=actor)
    except ChainError as exc:
        logger.info("landed-per-chain sweep skipped: %s", exc)
        return {"applied": 0, "busy": 0}


def _follow(batch: Batch, attempts: list[PayoutAttempt]) -> set[int]:
    """Read ``attempts``' statuses (caller holds their wallets' locks) and apply the landed ones;
    returns the ids of the distributions credited. Raises ``ChainError``."""
    statuses = batch.gateway.statuses([a.signature for a in attempts])
    landed = [(a, statuses[a.signature].slot) for a in attempts if statuses[a.signature].state == "landed"]
    if not landed:
        return set()
    recorded = {a.pk: a.status for a, _ in landed}
    with transaction.atomic():  # the ledger's change and its alerts commit together
        overpaid = apply_landed(batch, landed, reason=REASON)
        for attempt, _ in landed:
            _alert(attempt, recorded[attempt.pk], overpaid.get(attempt.pk, 0))
    return {a.distribution_id for a, _ in landed}


def _alert(attempt: PayoutAttempt, recorded: str, overpaid: int) -> None:
    """The ``landed_per_chain`` alert of one attempt: what was recorded, what the chain says,
    and every payout signed after it for the same distribution (with its status now)."""
    later = list(
        PayoutAttempt.objects.filter(distribution_id=attempt.distribution_id, pk__gt=attempt.pk)
        .order_by("pk").values_list("signature", "status")
    )
    landed_later = [sig for sig, status in later if status == AttemptStatus.LANDED]
    if overpaid:
        after = f"paid twice: {overpaid} base units beyond what distribution {attempt.distribution_id} owed"
    elif landed_later:
        after = f"a later payout landed too ({landed_later[0]})"
    elif later:
        after = f"{len(later)} payout(s) were signed after it, none landed"
    else:
        after = "no second payout was signed for it"
    raise_alert(
        "landed_per_chain",
        f"payout {attempt.signature[:16]}… recorded {recorded} landed per chain; {after}",
        amount=attempt.amount, signature=attempt.signature, distribution=attempt.distribution_id,
        recorded_status=recorded, later_attempts=[{"signature": s, "status": st} for s, st in later],
        second_payout_signed=bool(later), second_payout_landed=bool(landed_later or overpaid), overpaid=overpaid,
    )
