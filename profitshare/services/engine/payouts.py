"""Payout transfers, exactly once: each attempt (signed bytes, signature, last valid block
height) is committed before its first send; outcomes are decided by signature status; a crashed
run's attempts are resolved from the chain before anything new is signed (docs/design.md, "Stale work is decided by the chain")."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from profitshare.chain.errors import ChainError, TransactionFailed
from profitshare.chain.payouts import SignedPayout
from profitshare.chain.transactions import SignedTransaction, describe_error, program_ids_of
from profitshare.db.bulk import insert_rows
from profitshare.models import (
    AttemptStatus,
    DistributionStatus,
    IouReason,
    PayoutAttempt,
    PayoutPath,
)
from profitshare.services.audit import append_events, event
from profitshare.services.engine import follow
from profitshare.services.engine.batch import UNRESOLVED_ATTEMPTS, Batch, Item, refresh
from profitshare.services.engine.ledger import apply_landed, owe

logger = logging.getLogger(__name__)


MAX_SIGNINGS_PER_RUN = 3


def transfer(batch: Batch) -> None:
    """Sign, record, send and confirm the payouts; re-sign only those that expired unlanded."""
    gateway = batch.gateway
    for _ in range(MAX_SIGNINGS_PER_RUN):
        items = [i for i in batch.live() if min(i.dist.withdrawn, i.payable) > 0]
        if not items:
            return
        try:
            recent = gateway.latest_blockhash()
        except ChainError as exc:
            for item in items:
                item.fall_short(IouReason.RPC_UNAVAILABLE, f"transfer: {exc}")
            return
        numbers = attempt_numbers(items)
        transfers = {item.dist.pk: item.transfers(min(item.dist.withdrawn, item.payable)) for item in items}
        items = [item for item in items if transfers[item.dist.pk]]  # too little for any leg: owed
        signed = {
            item.dist.pk: gateway.build_payout(
                item.keypair, reference=payout_reference(item, numbers), recent=recent,
                **item.payout_legs(transfers[item.dist.pk], item.creator_ata_exists),
            )
            for item in items
        }
        if not signed:
            return
        attempts = record_attempts(batch, items, signed)
        by_sig = dict(zip([a.signature for a in attempts], items, strict=True))
        expired = send_and_decide(batch, attempts, first_send=True)
        refresh(items)
        for attempt in attempts:
            item = by_sig[attempt.signature]
            if attempt.status in UNRESOLVED_ATTEMPTS:
                item.stop()  # outcome unknown: the resolver finishes it from the chain
            elif attempt.status == AttemptStatus.FAILED:
                owe(batch, item, IouReason.TRANSFER_FAILED, attempt.error)
        if not expired:
            return
    for item in batch.live():
        if min(item.dist.withdrawn, item.payable) > 0:
            item.fall_short(IouReason.BLOCKHASH_EXPIRED, "transfer expired unlanded")


def attempt_numbers(items: list[Item]) -> dict[int, int]:
    """``{distribution id: number of payout attempts recorded so far}`` (one query); the next
    attempt's memo carries that number + 1, so no two attempts share bytes."""
    counts: dict[int, int] = {}
    for pk in PayoutAttempt.objects.filter(distribution__in=[i.dist.pk for i in items]).values_list("distribution_id", flat=True):
        counts[pk] = counts.get(pk, 0) + 1
    return counts


def payout_reference(item: Item, numbers: dict[int, int]) -> str:
    """The memo of the item's next payout attempt: ``qv:d<distribution>:a<attempt number>``."""
    return f"qv:d{item.dist.pk}:a{numbers.get(item.dist.pk, 0) + 1}"


_ATTEMPT_COLUMNS = (
    "distribution_id", "iou_id", "agent_wallet_id", "amount", "path", "settles", "withdraw_amount", "legs", "signature",
    "raw_transaction", "blockhash", "last_valid_block_height", "destination_owner", "destination_ata", "status",
    "error", "created_at",
)


def record_attempts(batch: Batch, items: list[Item], signed: dict[int, SignedPayout]) -> list[PayoutAttempt]:
    """Record and commit one ``prepared`` attempt per signed payout (``{distribution id:
    SignedPayout}``), with its audit event, in one statement: the durable record comes before
    any send (docs/design.md, "Exactly once"). A payout with a Drift withdraw in it is on the
    ``atomic`` path. Returns the attempts, in the order of ``items``."""
    now = timezone.now()
    attempts, events = [], []
    for item in items:
        tx = signed[item.dist.pk]
        path = PayoutPath.ATOMIC if tx.settles or tx.withdraw_amount else PayoutPath.TRANSFER
        attempts.append(PayoutAttempt(
            distribution=item.dist, iou=item.iou, agent_wallet=item.dist.subscription.agent_wallet,
            amount=tx.amount, path=path, settles=tx.settles, withdraw_amount=tx.withdraw_amount,
            legs=item.paying, signature=tx.signature, raw_transaction=tx.raw, blockhash=tx.blockhash,
            last_valid_block_height=tx.last_valid_block_height, destination_owner=str(tx.destination_owner),
            destination_ata=str(tx.destination_ata), created_at=now,
        ))
        events.append(event(
            "payout_attempt", tx.signature, actor=batch.actor, to_status=AttemptStatus.PREPARED,
            distribution=item.dist.pk, iou=item.iou.pk if item.iou else None, amount=tx.amount, path=path,
            settles=tx.settles, withdraw_amount=tx.withdraw_amount, last_valid_block_height=tx.last_valid_block_height,
            **({"legs": item.paying} if len(item.paying) > 1 else {}),
        ))
    with transaction.atomic():
        pks = dict(insert_rows(PayoutAttempt, _ATTEMPT_COLUMNS, [
            tuple(getattr(a, column) for column in _ATTEMPT_COLUMNS) for a in attempts
        ], returning="signature"))
        append_events(events)
    for attempt in attempts:
        attempt.pk = pks[attempt.signature]
        attempt._state.adding = False
    return attempts


def send_and_decide(batch: Batch, attempts: list[PayoutAttempt], *, first_send: bool) -> list[PayoutAttempt]:
    """Send each attempt's bytes, mark sent, wait for all, apply the outcome. Returns the
    attempts that expired unlanded (safe to re-sign)."""
    gateway = batch.gateway
    refused: list[tuple[PayoutAttempt, str]] = []
    pending: dict[str, int] = {}
    signed = {
        a.signature: SignedTransaction(
            a.signature, bytes(a.raw_transaction), a.blockhash, a.last_valid_block_height,
            program_ids_of(a.raw_transaction),
        )
        for a in attempts
    }
    results = gateway.send_many(list(signed.values()))
    for attempt in attempts:
        error = results[attempt.signature]
        if isinstance(error, TransactionFailed) and first_send:
            # refused by preflight: it never landed and these bytes cannot
            refused.append((attempt, f"TransactionFailed: {describe_error(error.err, signed[attempt.signature].program_ids)}"))
            continue
        if error is not None:
            logger.info("send of %s: %s (decided by status)", attempt.signature, error)
        pending[attempt.signature] = attempt.last_valid_block_height
    _mark(batch, [(a, AttemptStatus.FAILED, e) for a, e in refused])
    _mark(batch, [(a, AttemptStatus.SENT, "") for a in attempts if a.signature in pending and a.status == AttemptStatus.PREPARED])
    try:
        outcome = gateway.wait_for(pending, timeout=gateway.confirm_timeout) if pending else {}
    except ChainError as exc:
        logger.info("statuses unknown: %s", exc)
        return []
    by_sig = {a.signature: a for a in attempts}
    landed, failed, expired = [], [], []
    for signature, status in outcome.items():
        attempt = by_sig[signature]
        if status.state == "expired":
            expired.append((attempt, AttemptStatus.EXPIRED, "blockhash expired unlanded"))
        elif status.state == "unknown":
            continue
        elif status.state == "landed":
            landed.append((attempt, status.slot))
        else:
            failed.append((attempt, AttemptStatus.FAILED,
                           f"TransactionFailed: {describe_error(status.err, signed[signature].program_ids)}"))
    _mark(batch, failed + expired)
    apply_landed(batch, landed)
    return [a for a, _, _ in expired]


def resolve_attempts(batch: Batch) -> None:
    """Decide this batch's recorded but undecided attempts from the chain: landed is paid,
    failed is failed, expired unlanded is marked (may be re-signed), live is re-broadcast with
    the same bytes and waited for. Items still undecided leave the batch untouched. Attempts
    recorded expired or failed that the chain says landed are applied first (``follow.recheck``)."""
    follow.recheck(batch)
    by_dist = {i.dist.pk: i for i in batch.items}
    attempts = list(PayoutAttempt.objects.filter(distribution__in=list(by_dist), status__in=UNRESOLVED_ATTEMPTS))
    if not attempts:
        return
    send_and_decide(batch, attempts, first_send=False)
    for attempt in attempts:
        if attempt.status in UNRESOLVED_ATTEMPTS:
            by_dist[attempt.distribution_id].stop()
    refresh(batch.items)
    for item in batch.items:
        if item.dist.status not in (DistributionStatus.PENDING, DistributionStatus.PROCESSING) and item.iou is None:
            item.stop()
        if item.dist.owed == 0:
            item.stop()


def _mark(batch: Batch, changes: list[tuple[PayoutAttempt, str, str]]) -> None:
    if not changes:
        return
    now = timezone.now()
    events = []
    for attempt, status, error in changes:
        before = attempt.status
        attempt.status, attempt.error = status, error[:2000]
        if status == AttemptStatus.SENT:
            attempt.sent_at = now
        else:
            attempt.resolved_at = now
        events.append(event("payout_attempt", attempt.signature, actor=batch.actor, from_status=before, to_status=status, reason=error))
    groups: dict[tuple[str, str], list[int]] = {}
    for attempt, status, _ in changes:
        groups.setdefault((status, attempt.error), []).append(attempt.pk)
    with transaction.atomic():
        for (status, error), pks in groups.items():  # one UPDATE per outcome, not per row
            stamp = {"sent_at": now} if status == AttemptStatus.SENT else {"resolved_at": now}
            PayoutAttempt.objects.filter(pk__in=pks).update(status=status, error=error, **stamp)
        append_events(events)
