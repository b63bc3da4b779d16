"""Durable records of the engine's settle and withdraw transactions (``DriftAction``).

Each is inserted (status ``prepared``) and committed before its transaction is sent, like a
payout attempt, and finished once its outcome is known. A withdraw whose outcome a run could not
learn (lost response, confirmation timeout) is resolved by its signature before the next run
withdraws for that distribution again: landed, what it delivered (read from the transaction's
token balances) is counted into ``withdrawn`` and used, not withdrawn twice; still live, no
new withdraw is sent until it is decided.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from profitshare.chain.errors import ChainError
from profitshare.chain.transactions import SignedTransaction
from profitshare.db.bulk import insert_rows
from profitshare.models import AttemptStatus, Distribution, DriftAction, DriftActionKind, IouReason
from profitshare.services.audit import append_events, event
from profitshare.services.engine.batch import Batch, Item

_COLUMNS = ("kind", "distribution_id", "iou_id", "agent_wallet_id", "amount", "signature", "last_valid_block_height")
FINAL = (AttemptStatus.LANDED, AttemptStatus.FAILED, AttemptStatus.EXPIRED)


def record(batch: Batch, kind: str, signed: dict[int, SignedTransaction], amounts: dict[int, int] | None = None) -> None:
    """Insert one ``prepared`` DriftAction per signed transaction (``{distribution id: tx}``)
    in one statement and commit it; call before sending. ``amounts``: USDC base units asked
    of each withdraw (settles: 0)."""
    by_pk = {item.dist.pk: item for item in batch.items}
    with transaction.atomic():
        insert_rows(DriftAction, _COLUMNS, [
            (kind, pk, by_pk[pk].iou.pk if by_pk[pk].iou else None, by_pk[pk].dist.subscription.agent_wallet_id,
             (amounts or {}).get(pk, 0), tx.signature, tx.last_valid_block_height)
            for pk, tx in signed.items()
        ])


def finish(outcomes: list[tuple[str, str, int | None, str]]) -> None:
    """Record outcomes ``[(signature, status, delivered or None, error)]``; rows with the same
    outcome share one UPDATE. ``status`` ``prepared`` with ``delivered`` None changes nothing."""
    groups: dict[tuple, list[str]] = {}
    for signature, status, delivered, error in outcomes:
        if status == AttemptStatus.PREPARED and delivered is None:
            continue
        groups.setdefault((status, delivered, error[:2000]), []).append(signature)
    if not groups:
        return
    now = timezone.now()
    with transaction.atomic():
        for (status, delivered, error), signatures in groups.items():
            DriftAction.objects.filter(signature__in=signatures).update(
                status=status, delivered=delivered, error=error, resolved_at=now if status in FINAL else None
            )


def status_of(state) -> str:
    """A ``wait_for`` answer (``SignatureStatus``, ``"expired"``, ``"unknown"`` or None) as a
    DriftAction status (undecided: ``prepared``)."""
    if state == "expired":
        return AttemptStatus.EXPIRED
    return {"landed": AttemptStatus.LANDED, "failed": AttemptStatus.FAILED}.get(
        getattr(state, "state", None), AttemptStatus.PREPARED
    )


def resolve_withdraws(batch: Batch, items: list[Item]) -> tuple[set[int], bool]:
    """Decide the earlier withdraws of ``items`` whose delivery is not counted yet. A landed
    one's delivery is added to the distribution's ``withdrawn`` (and the item's); failed or
    expired ones are closed. Returns the distribution ids that must not withdraw again in
    this run (a withdraw still live, or the chain could not tell) and whether there was any
    earlier withdraw to decide (the agent's balance may have moved since it was read)."""
    open_actions = list(
        DriftAction.objects.filter(
            distribution__in=[i.dist.pk for i in items], kind=DriftActionKind.WITHDRAW, delivered__isnull=True,
        ).exclude(status__in=(AttemptStatus.FAILED, AttemptStatus.EXPIRED))
    )
    if not open_actions:
        return set(), False
    by_pk = {i.dist.pk: i for i in items}
    blocked: set[int] = set()
    try:
        outcome = batch.gateway.wait_for({a.signature: a.last_valid_block_height for a in open_actions}, timeout=0)
    except ChainError as exc:
        for action in open_actions:
            by_pk[action.distribution_id].fall_short(IouReason.RPC_UNAVAILABLE, f"earlier withdraw {action.signature}: {exc}")
        return {a.distribution_id for a in open_actions}, True
    outcomes, counted, events = [], [], []
    for action in open_actions:
        item = by_pk[action.distribution_id]
        status = status_of(outcome.get(action.signature))
        delivered = None
        if status == AttemptStatus.LANDED:
            try:
                delivered = batch.gateway.withdraw_delivered(action.signature, item.agent)
            except ChainError:
                delivered = None
            if delivered is None:
                blocked.add(action.distribution_id)
                item.fall_short(IouReason.RPC_UNAVAILABLE, f"earlier withdraw {action.signature} landed; delivery unread")
                continue
            delivered = max(0, min(delivered, action.amount))
            counted.append((item, delivered))
            events.append(event(
                "distribution", item.dist.pk, actor=batch.actor, reason="earlier withdraw landed late",
                requested=action.amount, delivered=delivered, withdraw_signature=action.signature,
            ))
        elif status == AttemptStatus.PREPARED:  # still live: never a second withdraw beside it
            blocked.add(action.distribution_id)
            item.fall_short(IouReason.RPC_UNAVAILABLE, f"earlier withdraw {action.signature} undecided")
        outcomes.append((action.signature, status, delivered, ""))
    with transaction.atomic():
        finish(outcomes)
        for item, delivered in counted:
            if delivered:
                Distribution.objects.filter(pk=item.dist.pk).update(withdrawn=F("withdrawn") + delivered)
                item.dist.withdrawn += delivered
        append_events(events)
    return blocked, True
