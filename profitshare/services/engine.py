"""The payout pipeline: distributions (and IOU retries) from owed to paid, exactly once.

Order (DESIGN.md "The money path"; seeds 000 and 001 correct seed 002), for a batch of
distributions with distinct agent wallets, each wallet's payout lock held throughout:

1. resolve earlier attempts by their signatures' status first (a crashed worker's attempt:
   landed means paid; still live: the same bytes are re-broadcast);
2. fold the subscription's dust carry in; a creator address that is not a valid 32-byte base58
   key owes everything (``invalid_creator_wallet`` + alert); below the dust threshold (higher
   when the creator's ATA must be created) the amount is carried, not paid;
3. settle PnL on Drift and wait for confirmation (``settle_failed`` otherwise);
4. SOL pre-flight for the whole payout: withdraw + transfer fees, priority fee, ATA rent
   (``insufficient_sol``);
5. withdraw what is still needed from Drift; what arrived is read on the agent's USDC token
   account (never Drift collateral) and kept on the distribution as ``withdrawn``;
6. pay min(withdrawn, owed) with ``transfer_checked`` to the creator's ATA: the signed bytes,
   signature and last valid block height are committed before the first send; re-sent unchanged
   while the blockhash lives; re-signed only after it expired unlanded;
7. whatever remains owed becomes (or stays) one IOU with a reason code.

Batching is what makes fan-out fast (one signal, many subscribers): each phase costs a few RPC
calls and database statements for the whole batch (``getMultipleAccounts``,
``getSignatureStatuses``, bulk writes), not per payout. A single distribution is a batch of one.
Every step keeps ``paid + owed + carried + voided == share + carry_in`` (a database constraint).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.errors import (
    BlockhashExpired,
    ChainError,
    InsufficientSol,
    InvalidAddress,
    TransactionFailed,
)
from profitshare.chain.fees import TxFeeBudget, payout_sol_needed
from profitshare.chain.gateway import ChainGateway, get_gateway
from profitshare.chain.transactions import SignedTransaction, describe_error
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
from profitshare.services.audit import ENGINE, append_events, event, record_event
from profitshare.services.bulk_sql import insert_rows
from profitshare.services.earnings import record_paid
from profitshare.services.ious import claim_iou
from profitshare.services.locks import LockTimeout, agent_wallet_locks
from profitshare.services.notifications import alert
from profitshare.services.subscriptions import agent_keypair

logger = logging.getLogger(__name__)

ACTIVE_IOU_STATUSES = (IouStatus.OPEN, IouStatus.PROCESSING, IouStatus.EXPIRED)
UNRESOLVED_ATTEMPTS = (AttemptStatus.PREPARED, AttemptStatus.SENT)
MAX_SIGNINGS_PER_RUN = 3
BATCH_SIZE = 64
_gateways: dict[tuple, ChainGateway] = {}


def default_gateway() -> ChainGateway:
    """One gateway per process and configuration (its RPC connections and cached rent are
    reused across tasks); a change of the chain settings builds a new one."""
    key = (
        tuple(settings.QV_RPC_URLS), settings.QV_DRIFT_BACKEND, settings.QV_USDC_MINT,
        settings.QV_PRIORITY_FEE_MICROLAMPORTS, settings.QV_PAYOUT_COMPUTE_UNIT_LIMIT,
    )
    if key not in _gateways:
        _gateways[key] = get_gateway()
    return _gateways[key]


@dataclass
class Item:
    """One distribution in a batch (optionally for a claimed IOU) and what the run learned."""

    dist: Distribution
    keypair: Keypair
    iou: IOU | None = None
    active: bool = True
    reason: str = ""
    error: str = ""
    usdc_before: int = 0
    creator_ata_exists: bool | None = None  # None: not read yet

    @functools.cached_property
    def agent(self) -> Pubkey:
        return self.keypair.pubkey()

    def stop(self) -> None:
        self.active = False

    def fall_short(self, reason: str, error: str) -> None:
        if not self.reason:
            self.reason, self.error = reason, error


@dataclass
class _Batch:
    gateway: ChainGateway
    actor: str
    items: list[Item] = field(default_factory=list)

    def live(self) -> list[Item]:
        return [item for item in self.items if item.active]


# --- entry points --------------------------------------------------------------------------------
def process_distribution(
    distribution_id: int, *, gateway: ChainGateway | None = None, actor: str = ENGINE, lock_timeout: float = 60.0
) -> Distribution:
    """Run the pipeline for one distribution (waits up to ``lock_timeout`` s for its agent
    wallet; raises ``LockTimeout``). Safe to run twice or concurrently. Returns it as it ends."""
    agent = Distribution.objects.values_list("subscription__agent_wallet__pubkey", flat=True).get(pk=distribution_id)
    with agent_wallet_locks([agent], timeout=lock_timeout) as held:
        if not held:
            raise LockTimeout(f"agent wallet {agent} is busy")
        _run(_Batch(gateway or default_gateway(), actor), [distribution_id])
    return Distribution.objects.get(pk=distribution_id)


def is_pending(distribution_id: int) -> bool:
    """Whether the distribution still waits for its first run (status ``pending``)."""
    return Distribution.objects.filter(pk=distribution_id, status=DistributionStatus.PENDING).exists()


def process_pending(
    distribution_id: int | None = None, *, gateway: ChainGateway | None = None, actor: str = ENGINE,
    limit: int = BATCH_SIZE,
) -> list[int]:
    """Pay ``distribution_id`` and up to ``limit`` other pending distributions in one batch:
    one per agent wallet, only wallets whose lock is free (the rest are left to their own tasks).
    Returns the ids processed."""
    with transaction.atomic():
        rows = list(
            Distribution.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=DistributionStatus.PENDING)
            .order_by("id")
            .values_list("pk", "subscription__agent_wallet__pubkey")[: limit * 2]
        )
    if distribution_id is not None and distribution_id not in {pk for pk, _ in rows}:
        own = Distribution.objects.filter(pk=distribution_id, status=DistributionStatus.PENDING).values_list(
            "pk", "subscription__agent_wallet__pubkey"
        )
        rows = list(own) + rows
    by_agent: dict[str, int] = {}
    for pk, agent in rows:
        by_agent.setdefault(agent, pk)
        if len(by_agent) >= limit:
            break
    with agent_wallet_locks(list(by_agent), timeout=0) as held:
        ids = [by_agent[agent] for agent in held]
        if ids:
            _run(_Batch(gateway or default_gateway(), actor), ids)
    return ids


def retry_iou(
    iou_id: int, *, gateway: ChainGateway | None = None, actor: str = ENGINE, lock_timeout: float = 60.0
) -> IOU:
    """Try again to pay a claimed IOU (status ``processing``, see ``ious.claim_due_ious``).
    Funds already withdrawn for it are used first, never withdrawn twice. On failure the IOU
    returns to ``open`` (or ``expired`` past its TTL) with exponential backoff."""
    agent = IOU.objects.values_list("subscription__agent_wallet__pubkey", flat=True).get(pk=iou_id)
    with agent_wallet_locks([agent], timeout=lock_timeout) as held:
        if not held:
            raise LockTimeout(f"agent wallet {agent} is busy")
        _retry_locked(iou_id, gateway or default_gateway(), actor)
    return IOU.objects.get(pk=iou_id)


def retry_iou_now(
    iou_id: int, *, actor: str, gateway: ChainGateway | None = None, lock_timeout: float = 10.0
) -> IOU | None:
    """Retry one IOU now whatever its backoff (admin "retry now", guards): takes the agent
    wallet's lock *before* claiming, so a busy wallet (``LockTimeout``) changes nothing.
    Returns None when the IOU is not retryable (not open/expired). ``IOU.DoesNotExist`` if
    unknown."""
    agent = IOU.objects.values_list("subscription__agent_wallet__pubkey", flat=True).get(pk=iou_id)
    with agent_wallet_locks([agent], timeout=lock_timeout) as held:
        if not held:
            raise LockTimeout(f"agent wallet {agent} is busy")
        if not claim_iou(iou_id, actor=actor):
            return None
        _retry_locked(iou_id, gateway or default_gateway(), actor)
    return IOU.objects.get(pk=iou_id)


def _retry_locked(iou_id: int, gateway: ChainGateway, actor: str) -> None:
    iou = IOU.objects.get(pk=iou_id)
    if iou.status == IouStatus.PROCESSING:
        _collect_ious(_Batch(gateway, actor), [iou])


def _collect_ious(batch: _Batch, ious: list[IOU]) -> None:
    """Pay claimed (``processing``) IOUs of distinct agent wallets, whose locks the caller
    holds: earlier attempts are decided from the chain first; funds already withdrawn for them
    are used before any new withdraw."""
    by_dist = {iou.distribution_id: iou for iou in ious}
    batch.items = _load_items(list(by_dist))
    for item in batch.items:
        item.iou = by_dist[item.dist.pk]
    _resolve_attempts(batch)
    fresh = {i.pk: i for i in IOU.objects.filter(pk__in=[iou.pk for iou in ious])}
    for item in batch.live():
        item.iou = fresh[item.iou.pk]
        if item.iou.status != IouStatus.PROCESSING:
            item.stop()
            continue
        try:
            parse_address(item.dist.creator.address)
        except InvalidAddress as exc:
            _owe(batch, item, IouReason.INVALID_CREATOR_WALLET, str(exc))
    if batch.live():
        _collect(batch)


def _collect_expired_first(batch: _Batch) -> None:
    """Expired debts are collected first from later profits (issue 5, seed 000 #8): before a
    subscription's new share is withdrawn and paid, its expired IOUs are claimed and paid,
    oldest first, from the PnL this batch just settled. One query when there are none."""
    items = [i for i in batch.live() if i.iou is None]
    if not items:
        return
    in_batch = {i.dist.pk for i in batch.items}
    expired = [
        iou for iou in IOU.objects.filter(
            subscription_id__in={i.dist.subscription_id for i in items}, status=IouStatus.EXPIRED,
        ).order_by("created_at", "id")
        if iou.distribution_id not in in_batch
    ]
    if not expired:
        return
    _settle(batch)  # the new profit becomes collateral the old debts can be withdrawn from
    queues: dict[int, list[IOU]] = {}
    for iou in expired:
        queues.setdefault(iou.subscription_id, []).append(iou)
    while queues:  # one IOU per subscription (so per agent wallet) per round, oldest first
        round_ = [queue.pop(0) for queue in queues.values()]
        queues = {sub: queue for sub, queue in queues.items() if queue}
        claimed = [iou for iou in round_ if claim_iou(iou.pk, actor=batch.actor)]
        if claimed:
            _collect_ious(_Batch(batch.gateway, batch.actor), claimed)


# --- the pipeline --------------------------------------------------------------------------------
def _load_items(ids: list[int]) -> list[Item]:
    dists = Distribution.objects.select_related(
        "subscription__agent_wallet", "subscription__bot", "creator", "close"
    ).filter(pk__in=ids).order_by("id")
    return [Item(d, agent_keypair(d.subscription.agent_wallet)) for d in dists]


def _run(batch: _Batch, ids: list[int]) -> None:
    batch.items = [
        item for item in _load_items(ids)
        if item.dist.status in (DistributionStatus.PENDING, DistributionStatus.PROCESSING)
    ]
    if not batch.items:
        return
    _resolve_attempts(batch)
    _start(batch)
    _fold_dust_and_check(batch)
    _collect_expired_first(batch)
    _collect(batch)


def _collect(batch: _Batch) -> None:
    """Settle, pre-flight, withdraw and transfer what is owed; owe the rest."""
    _settle(batch)
    _preflight(batch)
    _withdraw(batch)
    _transfer(batch)
    _refresh(batch.live())
    for item in batch.live():
        if item.dist.owed > 0:
            _owe(batch, item, item.reason or IouReason.WITHDRAW_SHORT, item.error)


def _refresh(items: list[Item]) -> None:
    fresh = {d.pk: d for d in Distribution.objects.filter(pk__in=[i.dist.pk for i in items])}
    for item in items:
        d = fresh[item.dist.pk]
        for name in ("status", "owed", "paid", "carried", "carry_in", "withdrawn", "settled", "attempts"):
            setattr(item.dist, name, getattr(d, name))


def _start(batch: _Batch) -> None:
    pending = [i for i in batch.live() if i.dist.status == DistributionStatus.PENDING]
    if not pending:
        return
    with transaction.atomic():
        events = []
        for item in pending:
            item.dist.status = DistributionStatus.PROCESSING
            item.dist.attempts += 1
            events.append(event("distribution", item.dist.pk, actor=batch.actor, from_status="pending", to_status="processing"))
        Distribution.objects.filter(pk__in=[i.dist.pk for i in pending]).update(
            status=DistributionStatus.PROCESSING, attempts=F("attempts") + 1, updated_at=timezone.now()
        )
        append_events(events)


def _fold_dust_and_check(batch: _Batch) -> None:
    """Fold dust carries in, refuse invalid creator addresses, carry what is below the dust
    threshold (the higher one when the creator's ATA does not exist yet)."""
    items = [i for i in batch.live() if i.iou is None]
    if not items:
        return
    with transaction.atomic():
        subs = {s.pk: s for s in Subscription.objects.select_for_update().filter(pk__in=[i.dist.subscription_id for i in items])}
        dists = {d.pk: d for d in Distribution.objects.select_for_update().filter(pk__in=[i.dist.pk for i in items])}
        folded, events = [], []
        for item in items:
            sub, dist = subs[item.dist.subscription_id], dists[item.dist.pk]
            item.dist.subscription.status = sub.status
            if sub.dust_carry:
                carry, sub.dust_carry = sub.dust_carry, 0
                dist.carry_in += carry
                dist.owed += carry
                folded.append((sub, dist))
                events.append(event("distribution", dist.pk, actor=batch.actor, reason="dust carry folded in", carry_in=carry))
            item.dist.carry_in, item.dist.owed = dist.carry_in, dist.owed
        if folded:
            Subscription.objects.bulk_update([s for s, _ in folded], ["dust_carry"])
            Distribution.objects.bulk_update([d for _, d in folded], ["carry_in", "owed"])
            append_events(events)
    creators = {}
    for item in items:
        try:
            creators[item.dist.pk] = parse_address(item.dist.creator.address)
        except InvalidAddress as exc:
            _owe(batch, item, IouReason.INVALID_CREATOR_WALLET, str(exc))
    items = [i for i in items if i.active]
    try:
        atas = batch.gateway.multiple_accounts([usdc_ata(creators[i.dist.pk], batch.gateway.usdc_mint) for i in items])
    except ChainError as exc:
        for item in items:
            _owe(batch, item, IouReason.RPC_UNAVAILABLE, f"creator token account: {exc}")
        return
    carried = []
    for item, ata in zip(items, atas, strict=True):
        item.creator_ata_exists = ata is not None
        dist = item.dist
        if dist.paid or dist.withdrawn or dist.subscription.status == SubscriptionStatus.ENDED:
            continue  # a resumed run, or the final flush of an ended subscription: pay it
        threshold = settings.QV_DUST_THRESHOLD if ata is not None else settings.QV_DUST_THRESHOLD_NEW_ATA
        if dist.owed < threshold:
            carried.append((item, threshold))
    if carried:
        _carry(batch, carried)


def _carry(batch: _Batch, carried: list[tuple[Item, int]]) -> None:
    with transaction.atomic():
        subs = {s.pk: s for s in Subscription.objects.select_for_update().filter(
            pk__in=[i.dist.subscription_id for i, _ in carried])}
        events = []
        for item, threshold in carried:
            dist, sub = item.dist, subs[item.dist.subscription_id]
            amount = dist.owed
            dist.carried += amount
            dist.owed = 0
            dist.status = DistributionStatus.CARRIED
            sub.dust_carry += amount
            events.append(event(
                "distribution", dist.pk, actor=batch.actor, from_status="processing", to_status="carried",
                reason=f"below dust threshold {threshold}", carried=amount, dust_carry=sub.dust_carry,
            ))
            item.stop()
        Distribution.objects.bulk_update([i.dist for i, _ in carried], ["carried", "owed", "status"])
        Subscription.objects.bulk_update(list(subs.values()), ["dust_carry"])
        append_events(events)


def _sign_unique(batch: _Batch, items: list[Item], sign) -> dict[int, SignedTransaction]:
    """Sign one Drift transaction per item with a shared blockhash; re-sign the few whose
    signature the chain already knows (equal bytes would be answered AlreadyProcessed).
    Raises ``ChainError`` if collisions persist (practically impossible)."""
    recent = batch.gateway.transactions.latest_blockhash()
    by_pk = {item.dist.pk: item for item in items}
    signed = {pk: sign(item, recent) for pk, item in by_pk.items()}
    for _ in range(3):
        statuses = batch.gateway.statuses([tx.signature for tx in signed.values()])
        known = [pk for pk, tx in signed.items() if statuses[tx.signature].state != "unknown"]
        if not known:
            return signed
        for pk in known:
            signed[pk] = sign(by_pk[pk], recent)
    raise ChainError("could not sign Drift transactions distinct from earlier ones")


def _send_all(batch: _Batch, signed: dict[int, SignedTransaction], items: list[Item], on_refused) -> dict[str, int]:
    """Send each signed transaction once; returns ``{signature: last_valid_block_height}`` of
    those that may land. ``on_refused(item, error_text)`` for preflight refusals."""
    by_pk = {item.dist.pk: item for item in items}
    results = batch.gateway.send_many(list(signed.values()))
    pending = {}
    for pk, tx in signed.items():
        error = results[tx.signature]
        if isinstance(error, TransactionFailed):
            on_refused(by_pk[pk], describe_error(error.err, tx.program_ids))
            continue
        if isinstance(error, BlockhashExpired):
            on_refused(by_pk[pk], "BlockhashExpired")
            continue
        if error is not None:
            logger.info("send of %s unknown: %s", tx.signature, error)
        pending[tx.signature] = tx.last_valid_block_height
    return pending


def _settle(batch: _Batch) -> None:
    items = [i for i in batch.live() if not i.dist.settled]
    if not items:
        return
    gateway = batch.gateway

    def sign(item: Item, recent):
        market = item.dist.close.market_index if item.dist.close else 0
        return gateway.build_settle(item.keypair, item.dist.subscription.drift_subaccount_id, market, recent, check_unique=False)

    def refused(item: Item, error: str) -> None:
        _owe(batch, item, IouReason.SETTLE_FAILED, f"SettleFailed: {error}")

    try:
        signed = _sign_unique(batch, items, sign)
        pending = _send_all(batch, signed, items, refused)
        outcome = gateway.wait_for(pending, timeout=gateway.confirm_timeout) if pending else {}
    except (ChainError, ValueError) as exc:
        for item in items:
            if item.active:
                _owe(batch, item, IouReason.RPC_UNAVAILABLE, f"settle: {exc}")
        return
    settled, events = [], []
    for item in items:
        if not item.active:
            continue
        tx = signed[item.dist.pk]
        status = outcome.get(tx.signature)
        if getattr(status, "state", None) == "landed":
            item.dist.settled = True
            settled.append(item.dist)
            events.append(event("distribution", item.dist.pk, actor=batch.actor, reason="PnL settled", settle_signature=tx.signature))
        elif getattr(status, "state", None) == "failed":
            _owe(batch, item, IouReason.SETTLE_FAILED, f"SettleFailed: {describe_error(status.err, tx.program_ids)}")
        else:
            _owe(batch, item, IouReason.RPC_UNAVAILABLE, f"settle {tx.signature} {status}")
    if settled:
        with transaction.atomic():
            Distribution.objects.filter(pk__in=[d.pk for d in settled]).update(settled=True)
            append_events(events)


def _preflight(batch: _Batch) -> None:
    items = batch.live()
    if not items:
        return
    gateway = batch.gateway
    unknown = [i for i in items if i.creator_ata_exists is None]
    try:
        states = gateway.wallet_states([i.agent for i in items])
        rent = gateway.token_account_rent()
        if unknown:
            atas = gateway.multiple_accounts(
                [usdc_ata(parse_address(i.dist.creator.address), gateway.usdc_mint) for i in unknown]
            )
            for item, ata in zip(unknown, atas, strict=True):
                item.creator_ata_exists = ata is not None
    except ChainError as exc:
        for item in items:
            _owe(batch, item, IouReason.RPC_UNAVAILABLE, f"pre-flight: {exc}")
        return
    price = gateway.priority_fee_microlamports
    for item in items:
        state = states[str(item.agent)]
        item.usdc_before = state.usdc or 0
        need_withdraw = item.dist.withdrawn < item.dist.owed
        missing = (0 if item.creator_ata_exists else 1) + (1 if need_withdraw and state.usdc is None else 0)
        needed = payout_sol_needed(
            transfer=TxFeeBudget(gateway.payout_compute_unit_limit, price),
            withdraw=TxFeeBudget(gateway.drift_compute_unit_limit, price) if need_withdraw else None,
            token_account_rent=rent if missing else 0,
            missing_token_accounts=missing,
        )
        if state.lamports < needed:
            _owe(batch, item, IouReason.INSUFFICIENT_SOL, str(InsufficientSol(needed, state.lamports)))


def _withdraw(batch: _Batch) -> None:
    items = [i for i in batch.live() if i.dist.withdrawn < i.dist.owed]
    if not items:
        return
    gateway = batch.gateway
    asked = {i.dist.pk: i.dist.owed - i.dist.withdrawn for i in items}

    def sign(item: Item, recent):
        return gateway.build_withdraw(
            item.keypair, item.dist.subscription.drift_subaccount_id, asked[item.dist.pk], True, recent,
            check_unique=False,
        )

    def refused(item: Item, error: str) -> None:
        item.fall_short(IouReason.WITHDRAW_FAILED, f"WithdrawFailed: {error}")

    try:
        signed = _sign_unique(batch, items, sign)
        pending = _send_all(batch, signed, items, refused)
        outcome = gateway.wait_for(pending, timeout=gateway.confirm_timeout) if pending else {}
        after = gateway.wallet_states([i.agent for i in items])
    except (ChainError, ValueError) as exc:
        for item in items:
            item.fall_short(IouReason.RPC_UNAVAILABLE, f"withdraw: {exc}")
        return  # nothing measured: pay from funds already on record only
    changed, events = [], []
    for item in items:
        tx = signed[item.dist.pk]
        status = outcome.get(tx.signature)
        state = getattr(status, "state", None)
        if state == "failed":
            item.fall_short(IouReason.WITHDRAW_FAILED, f"WithdrawFailed: {describe_error(status.err, tx.program_ids)}")
        elif state != "landed" and tx.signature in pending:
            item.fall_short(IouReason.RPC_UNAVAILABLE, f"withdraw {tx.signature} {status}")
        # what arrived, read on the token account (we hold the wallet's lock)
        delivered = max(0, min(asked[item.dist.pk], (after[str(item.agent)].usdc or 0) - item.usdc_before))
        if delivered:
            changed.append((delivered, item.dist.pk))
            events.append(event(
                "distribution", item.dist.pk, actor=batch.actor, reason="withdrawn from Drift",
                requested=asked[item.dist.pk], delivered=delivered, withdraw_signature=tx.signature,
            ))
        if delivered < asked[item.dist.pk]:
            item.fall_short(IouReason.WITHDRAW_SHORT, f"withdraw delivered {delivered} of {asked[item.dist.pk]} ({tx.signature})")
    if changed:
        with transaction.atomic():
            for delivered, pks in _group(changed).items():  # one UPDATE per amount, not per row
                Distribution.objects.filter(pk__in=pks).update(withdrawn=F("withdrawn") + delivered)
            append_events(events)
        delivered_by_pk = {pk: delivered for delivered, pk in changed}
        for item in items:
            item.dist.withdrawn += delivered_by_pk.get(item.dist.pk, 0)


def _transfer(batch: _Batch) -> None:
    """Sign, record, send and confirm the payouts; re-sign only those that expired unlanded."""
    gateway = batch.gateway
    for _ in range(MAX_SIGNINGS_PER_RUN):
        items = [i for i in batch.live() if min(i.dist.withdrawn, i.dist.owed) > 0]
        if not items:
            return
        try:
            recent = gateway.transactions.latest_blockhash()
        except ChainError as exc:
            for item in items:
                item.fall_short(IouReason.RPC_UNAVAILABLE, f"transfer: {exc}")
            return
        counts = {}
        for pk in PayoutAttempt.objects.filter(distribution__in=[i.dist.pk for i in items]).values_list("distribution_id", flat=True):
            counts[pk] = counts.get(pk, 0) + 1
        attempts, events = [], []
        for item in items:
            amount = min(item.dist.withdrawn, item.dist.owed)
            number = counts.get(item.dist.pk, 0) + 1
            signed = gateway.build_payout(
                item.keypair, parse_address(item.dist.creator.address), amount,
                reference=f"qv:d{item.dist.pk}:a{number}", check_funds=False, recent=recent,
                create_destination_ata=not item.creator_ata_exists,
            )
            attempts.append(PayoutAttempt(
                distribution=item.dist, iou=item.iou, agent_wallet=item.dist.subscription.agent_wallet,
                amount=amount, signature=signed.signature, raw_transaction=signed.raw,
                blockhash=signed.blockhash, last_valid_block_height=signed.last_valid_block_height,
                destination_owner=str(signed.destination_owner), destination_ata=str(signed.destination_ata),
            ))
            events.append(event(
                "payout_attempt", signed.signature, actor=batch.actor, to_status=AttemptStatus.PREPARED,
                distribution=item.dist.pk, iou=item.iou.pk if item.iou else None, amount=amount,
                last_valid_block_height=signed.last_valid_block_height,
            ))
        with transaction.atomic():  # the durable record comes before any send
            _record_attempts(attempts)
            append_events(events)
        by_sig = dict(zip([a.signature for a in attempts], items, strict=True))
        expired = _send_and_decide(batch, attempts, first_send=True)
        _refresh(items)
        for attempt in attempts:
            item = by_sig[attempt.signature]
            if attempt.status in UNRESOLVED_ATTEMPTS:
                item.stop()  # outcome unknown: the resolver finishes it from the chain
            elif attempt.status == AttemptStatus.FAILED:
                _owe(batch, item, IouReason.TRANSFER_FAILED, attempt.error)
        if not expired:
            return
    for item in batch.live():
        if min(item.dist.withdrawn, item.dist.owed) > 0:
            item.fall_short(IouReason.BLOCKHASH_EXPIRED, "transfer expired unlanded")


_ATTEMPT_COLUMNS = (
    "distribution_id", "iou_id", "agent_wallet_id", "amount", "signature", "raw_transaction", "blockhash",
    "last_valid_block_height", "destination_owner", "destination_ata", "status", "error", "created_at",
)


def _record_attempts(attempts: list[PayoutAttempt]) -> None:
    """Insert the prepared attempts in one statement and give each its primary key."""
    now = timezone.now()
    pks = dict(insert_rows(PayoutAttempt, _ATTEMPT_COLUMNS, [
        (a.distribution_id, a.iou_id, a.agent_wallet_id, a.amount, a.signature, a.raw_transaction, a.blockhash,
         a.last_valid_block_height, a.destination_owner, a.destination_ata, a.status, a.error, now)
        for a in attempts
    ], returning="signature"))
    for attempt in attempts:
        attempt.pk, attempt.created_at = pks[attempt.signature], now
        attempt._state.adding = False


def _send_and_decide(batch: _Batch, attempts: list[PayoutAttempt], *, first_send: bool) -> list[PayoutAttempt]:
    """Send each attempt's bytes, mark sent, wait for all, apply the outcome. Returns the
    attempts that expired unlanded (safe to re-sign)."""
    gateway = batch.gateway
    refused: list[tuple[PayoutAttempt, str]] = []
    pending: dict[str, int] = {}
    results = gateway.send_many([
        SignedTransaction(a.signature, bytes(a.raw_transaction), a.blockhash, a.last_valid_block_height, ())
        for a in attempts
    ])
    for attempt in attempts:
        error = results[attempt.signature]
        if isinstance(error, TransactionFailed) and first_send:
            # refused by preflight: it never landed and these bytes cannot
            refused.append((attempt, f"TransactionFailed: {describe_error(error.err)}"))
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
        if status == "expired":
            expired.append((attempt, AttemptStatus.EXPIRED, "blockhash expired unlanded"))
        elif status == "unknown":
            continue
        elif status.state == "landed":
            landed.append((attempt, status.slot))
        else:
            failed.append((attempt, AttemptStatus.FAILED, f"TransactionFailed: {describe_error(status.err)}"))
    _mark(batch, failed + expired)
    _apply_landed(batch, landed)
    return [a for a, _, _ in expired]


def _resolve_attempts(batch: _Batch) -> None:
    """Decide this batch's recorded but undecided attempts from the chain: landed is paid,
    failed is failed, expired unlanded is marked (may be re-signed), live is re-broadcast with
    the same bytes and waited for. Items still undecided leave the batch untouched."""
    by_dist = {i.dist.pk: i for i in batch.items}
    attempts = list(PayoutAttempt.objects.filter(distribution__in=list(by_dist), status__in=UNRESOLVED_ATTEMPTS))
    if not attempts:
        return
    _send_and_decide(batch, attempts, first_send=False)
    for attempt in attempts:
        if attempt.status in UNRESOLVED_ATTEMPTS:
            by_dist[attempt.distribution_id].stop()
    _refresh(batch.items)
    for item in batch.items:
        if item.dist.status not in (DistributionStatus.PENDING, DistributionStatus.PROCESSING) and item.iou is None:
            item.stop()
        if item.dist.owed == 0:
            item.stop()


def _mark(batch: _Batch, changes: list[tuple[PayoutAttempt, str, str]]) -> None:
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


def _apply_landed(batch: _Batch, landed: list[tuple[PayoutAttempt, int | None]]) -> None:
    """Apply landed payouts to the ledger exactly once (idempotent per attempt)."""
    if not landed:
        return
    now = timezone.now()
    with transaction.atomic():
        locked = {a.pk: a for a in PayoutAttempt.objects.select_for_update().filter(pk__in=[a.pk for a, _ in landed])}
        fresh = [(locked[a.pk], slot) for a, slot in landed if locked[a.pk].status != AttemptStatus.LANDED]
        if not fresh:
            return
        dists = {d.pk: d for d in Distribution.objects.select_for_update().filter(pk__in=[a.distribution_id for a, _ in fresh])}
        ious = {i.distribution_id: i for i in IOU.objects.select_for_update().filter(
            distribution__in=list(dists), status__in=ACTIVE_IOU_STATUSES)}
        events, paid_ious = [], []
        for attempt, slot in fresh:
            before = attempt.status
            attempt.status, attempt.slot, attempt.resolved_at = AttemptStatus.LANDED, slot, now
            events.append(event("payout_attempt", attempt.signature, actor=batch.actor, from_status=before,
                                 to_status=attempt.status, amount=attempt.amount, slot=slot))
            dist = dists[attempt.distribution_id]
            dist.paid += attempt.amount
            dist.owed -= attempt.amount
            dist.withdrawn -= min(dist.withdrawn, attempt.amount)
            before_status, dist.status = dist.status, _settled_status(dist)
            events.append(event("distribution", dist.pk, actor=batch.actor, from_status=before_status, to_status=dist.status,
                                 reason="payout landed", signature=attempt.signature, amount=attempt.amount,
                                 paid=dist.paid, owed=dist.owed))
            iou = ious.get(dist.pk)
            if iou is not None:
                iou.paid_amount += attempt.amount
                before_iou = iou.status
                if iou.paid_amount >= iou.amount:
                    iou.status, iou.resolved_at = IouStatus.PAID, now
                    paid_ious.append(iou)
                events.append(event("iou", iou.pk, actor=batch.actor, from_status=before_iou, to_status=iou.status,
                                     reason="payout landed", signature=attempt.signature, amount=attempt.amount,
                                     remaining=iou.remaining))
        by_slot: dict[int | None, list[int]] = {}
        for attempt, slot in fresh:
            by_slot.setdefault(slot, []).append(attempt.pk)
        for slot, pks in by_slot.items():  # a batch lands in one or a few slots
            PayoutAttempt.objects.filter(pk__in=pks).update(status=AttemptStatus.LANDED, slot=slot, resolved_at=now)
        # rows are locked and their final values computed above: one UPDATE per distinct result
        finals = [((d.paid, d.owed, d.withdrawn, d.status), d.pk) for d in dists.values()]
        for (paid, owed, withdrawn, status), pks in _group(finals).items():
            Distribution.objects.filter(pk__in=pks).update(
                paid=paid, owed=owed, withdrawn=withdrawn, status=status, updated_at=now
            )
        if ious:
            IOU.objects.bulk_update(list(ious.values()), ["paid_amount", "status", "resolved_at"])
        record_paid((dists[a.distribution_id], a.amount) for a, _ in fresh)  # earnings rollups, same transaction
        append_events(events)
        for iou in paid_ious:
            _clear_delinquency(iou.subscription_id, batch.actor)
    for attempt, _ in landed:
        attempt.status = AttemptStatus.LANDED


def _group(pairs: list[tuple]) -> dict:
    """``[(key, pk)]`` to ``{key: [pk, ...]}`` (rows that get the same UPDATE)."""
    groups: dict = {}
    for key, pk in pairs:
        groups.setdefault(key, []).append(pk)
    return groups


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
    record_event("subscription", sub.subscription_id, actor=actor, from_status=SubscriptionStatus.DELINQUENT,
                 to_status=sub.status, reason="debts paid")


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff of IOU retries: base × 2^(attempts−1), capped (settings)."""
    base, cap = settings.QV_IOU_RETRY_BASE_SECONDS, settings.QV_IOU_RETRY_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def _owe(batch: _Batch, item: Item, reason: str, error: str) -> None:
    """Whatever the distribution still owes becomes (or stays) its one active IOU; the item
    leaves the batch."""
    item.stop()
    now = timezone.now()
    with transaction.atomic():
        dist = Distribution.objects.select_for_update(of=("self",)).select_related("creator").get(pk=item.dist.pk)
        if dist.owed == 0:
            return
        iou = IOU.objects.select_for_update().filter(distribution=dist, status__in=ACTIVE_IOU_STATUSES).first()
        before_dist = dist.status
        dist.status = _settled_status(dist)
        dist.save(update_fields=["status", "updated_at"])
        if before_dist != dist.status:
            record_event("distribution", dist.pk, actor=batch.actor, from_status=before_dist, to_status=dist.status,
                         reason=reason, owed=dist.owed)
        if iou is None:
            iou = IOU.objects.create(
                distribution=dist, subscription_id=dist.subscription_id, creator_id=dist.creator_id,
                amount=dist.owed, reason=reason, last_error=error[:2000], next_retry_at=now + retry_delay(1),
                expires_at=now + timedelta(days=settings.QV_IOU_TTL_DAYS),
            )
            record_event("iou", iou.pk, actor=batch.actor, to_status=iou.status, reason=reason, amount=iou.amount, error=error)
            alert("iou_created", f"IOU {iou.pk}: {dist.owed} owed to {dist.creator.address} ({reason})",
                        amount=dist.owed, iou=iou.pk, distribution=dist.pk, reason=reason)
            if reason == IouReason.INVALID_CREATOR_WALLET:
                alert("invalid_creator_wallet", f"creator wallet {dist.creator.address!r} is invalid",
                      amount=dist.owed, creator=dist.creator.address)
            return
        before = iou.status
        iou.status = IouStatus.EXPIRED if iou.expires_at <= now else IouStatus.OPEN
        iou.reason, iou.last_error, iou.claimed_at = reason, error[:2000], None
        iou.next_retry_at = now + retry_delay(iou.attempts + 1)
        iou.save(update_fields=["status", "reason", "last_error", "claimed_at", "next_retry_at"])
        record_event("iou", iou.pk, actor=batch.actor, from_status=before, to_status=iou.status, reason=reason,
                     remaining=iou.remaining, error=error, next_retry_at=iou.next_retry_at.isoformat())
