"""The payout pipeline: one distribution (or one IOU retry) from owed to paid, exactly once.

Order (DESIGN.md "The money path"; seeds 000 and 001 correct seed 002):

1. under the agent wallet's lock (``locks``), resolve any earlier attempt of this distribution by
   its signature's status first (a crashed worker's attempt: landed means paid);
2. fold the subscription's dust carry in; a creator address that is not a valid 32-byte
   base58 key owes everything (``invalid_creator_wallet`` + alert); below the dust threshold
   (higher when the creator's ATA must be created) the amount is carried, not paid;
3. settle PnL on Drift and wait for confirmation (``settle_failed`` otherwise);
4. SOL pre-flight for the whole payout: withdraw + transfer fees, priority fee, ATA rent
   (``insufficient_sol``);
5. withdraw what is still needed from Drift; what arrived is measured on the agent's USDC
   token account (never Drift collateral) and kept on the distribution as ``withdrawn``;
6. pay min(withdrawn, owed) with ``transfer_checked`` to the creator's ATA: the signed bytes,
   signature and last valid block height are committed before the first send; re-sent
   unchanged while the blockhash lives; re-signed only after it expired unlanded;
7. whatever remains owed becomes (or stays) one IOU with a reason code.

Invariant kept by every step, in one database transaction per step:
``paid + owed + carried + voided == share + carry_in`` (a database constraint too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from profitshare.chain.addresses import parse_address
from profitshare.chain.errors import (
    BlockhashExpired,
    ChainError,
    InsufficientSol,
    InvalidAddress,
    RpcUnavailable,
    SendOutcomeUnknown,
    SettleFailed,
    TransactionFailed,
    WithdrawFailed,
)
from profitshare.chain.gateway import ChainGateway, get_gateway
from profitshare.chain.transactions import SignedTransaction
from profitshare.models import (
    IOU,
    AttemptStatus,
    Distribution,
    DistributionStatus,
    IouReason,
    IouStatus,
    PayoutAttempt,
    Subscription,
    SubscriptionStatus,
)
from profitshare.services.alerts import raise_alert
from profitshare.services.audit import ENGINE, record_event
from profitshare.services.locks import agent_wallet_lock
from profitshare.services.subscriptions import agent_keypair

logger = logging.getLogger(__name__)

ACTIVE_IOU_STATUSES = (IouStatus.OPEN, IouStatus.PROCESSING, IouStatus.EXPIRED)
UNRESOLVED_ATTEMPTS = (AttemptStatus.PREPARED, AttemptStatus.SENT)
MAX_SIGNINGS_PER_RUN = 3


class TransferOutcome(Enum):
    LANDED = "landed"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass
class _Run:
    """One pass of the pipeline over a distribution (optionally for a claimed IOU)."""

    gateway: ChainGateway
    actor: str
    distribution: Distribution
    iou: IOU | None = None

    @property
    def subscription(self) -> Subscription:
        return self.distribution.subscription


# --- entry points --------------------------------------------------------------------------------
def process_distribution(
    distribution_id: int, *, gateway: ChainGateway | None = None, actor: str = ENGINE, lock_timeout: float = 60.0
) -> Distribution:
    """Run the pipeline for a new distribution (the django-q2 task of one close).

    Safe to run twice or concurrently: the agent wallet lock serialises runs and a distribution
    past ``pending``/``processing`` is left alone. Returns the distribution as it ends.
    Raises ``LockTimeout`` when the agent wallet stays busy ``lock_timeout`` seconds.
    """
    gateway = gateway or get_gateway()
    agent_pubkey = Distribution.objects.values_list("subscription__agent_wallet__pubkey", flat=True).get(
        pk=distribution_id
    )
    with agent_wallet_lock(agent_pubkey, timeout=lock_timeout):
        run = _Run(gateway, actor, _load(distribution_id))
        if run.distribution.status not in (DistributionStatus.PENDING, DistributionStatus.PROCESSING):
            return run.distribution
        resolve_attempts(run.distribution, gateway, actor)
        run.distribution = _load(distribution_id)
        if run.distribution.status not in (DistributionStatus.PENDING, DistributionStatus.PROCESSING):
            return run.distribution
        _start(run)
        if not _check_creator_and_dust(run):
            return run.distribution
        _collect(run)
        return _load(distribution_id)


def retry_iou(
    iou_id: int, *, gateway: ChainGateway | None = None, actor: str = ENGINE, lock_timeout: float = 60.0
) -> IOU:
    """Try again to pay a claimed IOU (status ``processing``, see ``ious.claim_due_ious``).

    Funds already withdrawn for it are used first, never withdrawn twice. On failure the IOU
    returns to ``open`` (or ``expired`` past its TTL) with exponential backoff.
    """
    gateway = gateway or get_gateway()
    iou = IOU.objects.select_related("subscription__agent_wallet").get(pk=iou_id)
    with agent_wallet_lock(iou.subscription.agent_wallet.pubkey, timeout=lock_timeout):
        iou = IOU.objects.get(pk=iou_id)
        if iou.status != IouStatus.PROCESSING:
            return iou
        distribution = _load(iou.distribution_id)
        resolve_attempts(distribution, gateway, actor)
        iou.refresh_from_db()
        if iou.status != IouStatus.PROCESSING:
            return iou
        run = _Run(gateway, actor, _load(iou.distribution_id), iou)
        try:
            parse_address(run.distribution.creator.address)
        except InvalidAddress as exc:
            _owe(run, IouReason.INVALID_CREATOR_WALLET, str(exc))
            return IOU.objects.get(pk=iou_id)
        _collect(run)
        return IOU.objects.get(pk=iou_id)


# --- steps ---------------------------------------------------------------------------------------
def _load(distribution_id: int) -> Distribution:
    return Distribution.objects.select_related(
        "subscription__agent_wallet", "subscription__bot", "creator", "close"
    ).get(pk=distribution_id)


def _start(run: _Run) -> None:
    with transaction.atomic():
        dist = Distribution.objects.select_for_update().get(pk=run.distribution.pk)
        before = dist.status
        dist.status = DistributionStatus.PROCESSING
        dist.attempts += 1
        dist.save(update_fields=["status", "attempts", "updated_at"])
        record_event("distribution", dist.pk, actor=run.actor, from_status=before, to_status=dist.status)
    run.distribution = _load(run.distribution.pk)


def _check_creator_and_dust(run: _Run) -> bool:
    """Fold the dust carry in, validate the creator address and apply the dust rule.
    Returns True when the distribution should be paid now."""
    dist = run.distribution
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=dist.subscription_id)
        dist = Distribution.objects.select_for_update().get(pk=dist.pk)
        if sub.dust_carry:
            carry, sub.dust_carry = sub.dust_carry, 0
            dist.carry_in += carry
            dist.owed += carry
            sub.save(update_fields=["dust_carry"])
            dist.save(update_fields=["carry_in", "owed", "updated_at"])
            record_event("distribution", dist.pk, actor=run.actor, reason="dust carry folded in", carry_in=carry)
    run.distribution = _load(dist.pk)
    try:
        creator = parse_address(run.distribution.creator.address)
    except InvalidAddress as exc:
        _owe(run, IouReason.INVALID_CREATOR_WALLET, str(exc))
        return False
    dist = run.distribution
    if dist.paid or dist.withdrawn or run.subscription.status == SubscriptionStatus.ENDED:
        return True  # a resumed run, or the final flush of an ended subscription: pay it
    try:
        ata_exists = run.gateway.ata_exists(creator)
    except ChainError as exc:
        _owe(run, IouReason.RPC_UNAVAILABLE, str(exc))
        return False
    threshold = settings.QV_DUST_THRESHOLD if ata_exists else settings.QV_DUST_THRESHOLD_NEW_ATA
    if dist.owed >= threshold:
        return True
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=dist.subscription_id)
        dist = Distribution.objects.select_for_update().get(pk=dist.pk)
        amount = dist.owed
        dist.carried += amount
        dist.owed = 0
        dist.status = DistributionStatus.CARRIED
        dist.save(update_fields=["carried", "owed", "status", "updated_at"])
        sub.dust_carry += amount
        sub.save(update_fields=["dust_carry"])
        record_event(
            "distribution", dist.pk, actor=run.actor, from_status=DistributionStatus.PROCESSING,
            to_status=dist.status, reason=f"below dust threshold {threshold}", carried=amount,
            dust_carry=sub.dust_carry,
        )
    run.distribution = _load(dist.pk)
    return False


def _collect(run: _Run) -> None:
    """Settle, pre-flight, withdraw and transfer what is owed; owe the rest."""
    gateway, dist, sub = run.gateway, run.distribution, run.subscription
    keypair = agent_keypair(sub.agent_wallet)
    creator = parse_address(dist.creator.address)
    if not dist.settled:
        market_index = dist.close.market_index if dist.close else 0
        try:
            signature = gateway.settle_pnl(keypair, sub.drift_subaccount_id, market_index)
        except SettleFailed as exc:
            _owe(run, IouReason.SETTLE_FAILED, str(exc))
            return
        except (RpcUnavailable, SendOutcomeUnknown) as exc:
            _owe(run, IouReason.RPC_UNAVAILABLE, f"settle: {exc}")
            return
        with transaction.atomic():
            Distribution.objects.filter(pk=dist.pk).update(settled=True, updated_at=timezone.now())
            record_event("distribution", dist.pk, actor=run.actor, reason="PnL settled", settle_signature=signature)
        dist = run.distribution = _load(dist.pk)
    need_withdraw = dist.withdrawn < dist.owed
    try:
        needed = gateway.payout_sol_needed(
            creator, include_withdraw=need_withdraw, agent_owner=keypair.pubkey() if need_withdraw else None
        )
        available = gateway.sol_balance(keypair.pubkey())
    except ChainError as exc:
        _owe(run, IouReason.RPC_UNAVAILABLE, f"pre-flight: {exc}")
        return
    if available < needed:
        _owe(run, IouReason.INSUFFICIENT_SOL, str(InsufficientSol(needed, available)))
        return
    shortfall_reason, error = None, ""
    if need_withdraw:
        asked = dist.owed - dist.withdrawn
        try:
            result = gateway.withdraw(keypair, sub.drift_subaccount_id, asked)
        except WithdrawFailed as exc:
            shortfall_reason, error = IouReason.WITHDRAW_FAILED, str(exc)
        except (RpcUnavailable, SendOutcomeUnknown) as exc:
            shortfall_reason, error = IouReason.RPC_UNAVAILABLE, f"withdraw: {exc}"
        else:
            with transaction.atomic():
                locked = Distribution.objects.select_for_update().get(pk=dist.pk)
                locked.withdrawn += result.delivered
                locked.save(update_fields=["withdrawn", "updated_at"])
                record_event(
                    "distribution", dist.pk, actor=run.actor, reason="withdrawn from Drift",
                    requested=asked, delivered=result.delivered, withdraw_signature=result.signature,
                )
            if result.delivered < asked:
                shortfall_reason = IouReason.WITHDRAW_SHORT
                error = f"withdraw delivered {result.delivered} of {asked} ({result.signature})"
        dist = run.distribution = _load(dist.pk)
    pay = min(dist.withdrawn, dist.owed)
    if pay > 0:
        outcome = _transfer(run, keypair, creator, pay)
        if outcome is TransferOutcome.UNKNOWN:
            return  # the attempt stays recorded; resolve_attempts finishes it
        if outcome is not TransferOutcome.LANDED:
            shortfall_reason = (
                IouReason.BLOCKHASH_EXPIRED if outcome is TransferOutcome.EXPIRED else IouReason.TRANSFER_FAILED
            )
            error = f"transfer {outcome.value}"
    run.distribution = _load(dist.pk)
    if run.distribution.owed > 0:
        _owe(run, shortfall_reason or IouReason.WITHDRAW_SHORT, error)


def _transfer(run: _Run, keypair, creator, amount: int) -> TransferOutcome:
    """Sign, record, send and confirm one payout of ``amount`` base units; re-sign only after
    the previous attempt expired unlanded (at most ``MAX_SIGNINGS_PER_RUN`` signings)."""
    gateway, dist = run.gateway, run.distribution
    outcome = TransferOutcome.FAILED
    for _ in range(MAX_SIGNINGS_PER_RUN):
        number = PayoutAttempt.objects.filter(distribution=dist).count() + 1
        try:
            signed = gateway.build_payout(
                keypair, creator, amount, reference=f"qv:d{dist.pk}:a{number}", check_funds=False
            )
        except ChainError as exc:
            logger.warning("payout of distribution %s not signed: %s", dist.pk, exc)
            return TransferOutcome.UNKNOWN if isinstance(exc, RpcUnavailable) else TransferOutcome.FAILED
        with transaction.atomic():
            attempt = PayoutAttempt.objects.create(
                distribution=dist,
                iou=run.iou,
                agent_wallet=run.subscription.agent_wallet,
                amount=amount,
                signature=signed.signature,
                raw_transaction=signed.raw,
                blockhash=signed.blockhash,
                last_valid_block_height=signed.last_valid_block_height,
                destination_owner=str(signed.destination_owner),
                destination_ata=str(signed.destination_ata),
            )
            record_event(
                "payout_attempt", attempt.signature, actor=run.actor, to_status=attempt.status,
                distribution=dist.pk, iou=run.iou.pk if run.iou else None, amount=amount,
                last_valid_block_height=signed.last_valid_block_height,
            )
        outcome = _send_and_confirm(attempt, gateway, run.actor, first_send=True)
        if outcome is not TransferOutcome.EXPIRED:
            return outcome
    return outcome


def _send_and_confirm(attempt: PayoutAttempt, gateway: ChainGateway, actor: str, *, first_send: bool) -> TransferOutcome:
    try:
        gateway.transactions.send(
            SignedTransaction(
                signature=attempt.signature,
                raw=bytes(attempt.raw_transaction),
                blockhash=attempt.blockhash,
                last_valid_block_height=attempt.last_valid_block_height,
                program_ids=(),
            )
        )
    except BlockhashExpired:
        return _resolve_by_status(attempt, gateway, actor)
    except TransactionFailed as exc:
        if first_send:  # refused by preflight: it never landed and its bytes cannot
            _mark(attempt, AttemptStatus.FAILED, actor, error=str(exc))
            return TransferOutcome.FAILED
        return _resolve_by_status(attempt, gateway, actor)
    except (SendOutcomeUnknown, RpcUnavailable) as exc:
        logger.info("send of %s unknown: %s", attempt.signature, exc)
    if attempt.status == AttemptStatus.PREPARED:
        _mark(attempt, AttemptStatus.SENT, actor)
    try:
        gateway.confirm(attempt.signature, attempt.last_valid_block_height)
    except TransactionFailed as exc:
        _mark(attempt, AttemptStatus.FAILED, actor, error=str(exc))
        return TransferOutcome.FAILED
    except BlockhashExpired:
        return _resolve_by_status(attempt, gateway, actor)
    except (SendOutcomeUnknown, RpcUnavailable):
        return TransferOutcome.UNKNOWN
    return _landed(attempt, gateway, actor)


def _resolve_by_status(attempt: PayoutAttempt, gateway: ChainGateway, actor: str) -> TransferOutcome:
    """Decide an attempt from the chain alone: landed, failed, expired or still unknown."""
    try:
        status = gateway.signature_status(attempt.signature)
        if status.state == "landed":
            return _landed(attempt, gateway, actor)
        if status.state == "failed":
            _mark(attempt, AttemptStatus.FAILED, actor, error=str(status.err))
            return TransferOutcome.FAILED
        if gateway.is_expired(attempt.last_valid_block_height):
            # check once more: it could have landed between the two reads
            if gateway.signature_status(attempt.signature).state == "landed":
                return _landed(attempt, gateway, actor)
            _mark(attempt, AttemptStatus.EXPIRED, actor, error="blockhash expired unlanded")
            return TransferOutcome.EXPIRED
    except ChainError as exc:
        logger.info("status of %s unknown: %s", attempt.signature, exc)
    return TransferOutcome.UNKNOWN


def resolve_attempts(distribution: Distribution, gateway: ChainGateway, actor: str) -> list[TransferOutcome]:
    """Resolve this distribution's recorded but undecided attempts (caller holds the agent
    lock): landed ones are applied as paid, expired ones marked, live ones re-broadcast with the
    same signed bytes and confirmed. Never resets anything blind (seed 001 #4)."""
    outcomes = []
    for attempt in PayoutAttempt.objects.filter(distribution=distribution, status__in=UNRESOLVED_ATTEMPTS):
        outcome = _resolve_by_status(attempt, gateway, actor)
        if outcome is TransferOutcome.UNKNOWN:
            outcome = _send_and_confirm(attempt, gateway, actor, first_send=False)
        outcomes.append(outcome)
    return outcomes


def _mark(attempt: PayoutAttempt, status: str, actor: str, *, error: str = "") -> None:
    with transaction.atomic():
        locked = PayoutAttempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.status == status:
            return
        before = locked.status
        locked.status = status
        locked.error = error[:2000]
        now = timezone.now()
        fields = ["status", "error"]
        if status == AttemptStatus.SENT:
            locked.sent_at = now
            fields.append("sent_at")
        else:
            locked.resolved_at = now
            fields.append("resolved_at")
        locked.save(update_fields=fields)
        record_event("payout_attempt", locked.signature, actor=actor, from_status=before, to_status=status, reason=error)
    attempt.status = status


def _landed(attempt: PayoutAttempt, gateway: ChainGateway, actor: str) -> TransferOutcome:
    """Apply a landed payout to the ledger exactly once (idempotent per attempt)."""
    slot = fee = None
    try:
        landed = gateway.read_payout(attempt.signature)
        if landed is not None:
            slot, fee = landed.slot, landed.fee_lamports
    except ChainError as exc:  # the payment stands; the fee is read back by reconciliation
        logger.info("read back of %s failed: %s", attempt.signature, exc)
    with transaction.atomic():
        locked = PayoutAttempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.status == AttemptStatus.LANDED:
            return TransferOutcome.LANDED
        before = locked.status
        locked.status = AttemptStatus.LANDED
        locked.slot, locked.fee_lamports, locked.resolved_at = slot, fee, timezone.now()
        locked.save(update_fields=["status", "slot", "fee_lamports", "resolved_at"])
        record_event(
            "payout_attempt", locked.signature, actor=actor, from_status=before, to_status=locked.status,
            amount=locked.amount, slot=slot, fee_lamports=fee,
        )
        dist = Distribution.objects.select_for_update().get(pk=locked.distribution_id)
        amount = locked.amount
        dist.paid += amount
        dist.owed -= amount
        dist.withdrawn -= min(dist.withdrawn, amount)
        before_status = dist.status
        dist.status = _settled_status(dist)
        dist.save(update_fields=["paid", "owed", "withdrawn", "status", "updated_at"])
        record_event(
            "distribution", dist.pk, actor=actor, from_status=before_status, to_status=dist.status,
            reason="payout landed", signature=locked.signature, amount=amount, paid=dist.paid, owed=dist.owed,
        )
        iou = (
            IOU.objects.select_for_update().filter(distribution=dist, status__in=ACTIVE_IOU_STATUSES).first()
        )
        if iou is not None:
            iou.paid_amount += amount
            before_iou = iou.status
            fields = ["paid_amount"]
            if iou.paid_amount >= iou.amount:
                iou.status, iou.resolved_at = IouStatus.PAID, timezone.now()
                fields += ["status", "resolved_at"]
            iou.save(update_fields=fields)
            record_event(
                "iou", iou.pk, actor=actor, from_status=before_iou, to_status=iou.status,
                reason="payout landed", signature=locked.signature, amount=amount, remaining=iou.remaining,
            )
            _clear_delinquency(dist.subscription_id, actor)
    return TransferOutcome.LANDED


def _settled_status(dist: Distribution) -> str:
    if dist.owed == 0:
        return DistributionStatus.PAID if dist.paid else DistributionStatus.CARRIED
    return DistributionStatus.PARTIALLY_PAID if dist.paid else DistributionStatus.OWED


def _clear_delinquency(subscription_id: int, actor: str) -> None:
    sub = Subscription.objects.select_for_update().get(pk=subscription_id)
    if sub.status != SubscriptionStatus.DELINQUENT:
        return
    if IOU.objects.filter(subscription=sub, status__in=ACTIVE_IOU_STATUSES).exists():
        return
    sub.status = SubscriptionStatus.ACTIVE
    sub.save(update_fields=["status"])
    record_event(
        "subscription", sub.subscription_id, actor=actor, from_status=SubscriptionStatus.DELINQUENT,
        to_status=sub.status, reason="debts paid",
    )


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff of IOU retries: base × 2^(attempts−1), capped (settings)."""
    base, cap = settings.QV_IOU_RETRY_BASE_SECONDS, settings.QV_IOU_RETRY_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def _owe(run: _Run, reason: str, error: str) -> None:
    """Whatever the distribution still owes becomes (or stays) its one active IOU."""
    now = timezone.now()
    with transaction.atomic():
        dist = Distribution.objects.select_for_update().get(pk=run.distribution.pk)
        if dist.owed == 0:
            return
        iou = IOU.objects.select_for_update().filter(distribution=dist, status__in=ACTIVE_IOU_STATUSES).first()
        before_dist = dist.status
        dist.status = _settled_status(dist)
        dist.save(update_fields=["status", "updated_at"])
        if before_dist != dist.status:
            record_event(
                "distribution", dist.pk, actor=run.actor, from_status=before_dist, to_status=dist.status,
                reason=reason, owed=dist.owed,
            )
        if iou is None:
            iou = IOU.objects.create(
                distribution=dist,
                subscription_id=dist.subscription_id,
                creator_id=dist.creator_id,
                amount=dist.owed,
                reason=reason,
                last_error=error[:2000],
                next_retry_at=now + retry_delay(1),
                expires_at=now + timedelta(days=settings.QV_IOU_TTL_DAYS),
            )
            record_event("iou", iou.pk, actor=run.actor, to_status=iou.status, reason=reason, amount=iou.amount, error=error)
            raise_alert(
                "iou_created", f"IOU {iou.pk}: {dist.owed} owed to {dist.creator.address} ({reason})",
                amount=dist.owed, iou=iou.pk, distribution=dist.pk, reason=reason,
            )
            if reason == IouReason.INVALID_CREATOR_WALLET:
                raise_alert(
                    "invalid_creator_wallet", f"creator wallet {dist.creator.address!r} is invalid",
                    severity="critical", amount=dist.owed, creator=dist.creator.address,
                )
            return
        before = iou.status
        iou.status = IouStatus.EXPIRED if iou.expires_at <= now else IouStatus.OPEN
        iou.reason = reason
        iou.last_error = error[:2000]
        iou.claimed_at = None
        iou.next_retry_at = now + retry_delay(iou.attempts + 1)
        iou.save(update_fields=["status", "reason", "last_error", "claimed_at", "next_retry_at"])
        record_event(
            "iou", iou.pk, actor=run.actor, from_status=before, to_status=iou.status, reason=reason,
            remaining=iou.remaining, error=error, next_retry_at=iou.next_retry_at.isoformat(),
        )
