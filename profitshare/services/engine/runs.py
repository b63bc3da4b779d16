"""Entry points of the engine (tasks, resolver, guards, console and API call these) and the
order of the steps for a batch: resolve earlier attempts, start, dust, expired debts first,
the one-transaction payout, then step by step for the rest (pre-flight, settle, withdraw,
transfer), owe the rest."""

from __future__ import annotations

from django.conf import settings
from django.db import connection, transaction

from profitshare.chain.addresses import parse_address
from profitshare.chain.errors import InvalidAddress
from profitshare.chain.gateway import ChainGateway, get_gateway
from profitshare.models import IOU, Distribution, DistributionStatus, IouReason, IouStatus
from profitshare.services.audit import ENGINE
from profitshare.services.engine.atomic import pay_atomically
from profitshare.services.engine.batch import Batch, load_items, refresh
from profitshare.services.engine.carries import (
    finish_owing_nothing,
    fold_dust_and_check,
    hold_legs_without_accounts,
)
from profitshare.services.engine.ledger import owe
from profitshare.services.engine.payouts import resolve_attempts, transfer
from profitshare.services.engine.steps import (
    preflight,
    settle,
    start,
    withdraw,
)
from profitshare.services.ious import claim_iou
from profitshare.services.locks import LockTimeout, agent_wallet_locks

_gateways: dict[tuple, ChainGateway] = {}


def default_gateway() -> ChainGateway:
    """One gateway per process and configuration (its RPC connections and cached rent are
    reused across tasks); a change of the chain settings builds a new one."""
    key = (
        tuple(settings.QV_RPC_URLS), settings.QV_DRIFT_ENV, settings.QV_USDC_MINT,
        settings.QV_PRIORITY_FEE_MICROLAMPORTS, settings.QV_PAYOUT_COMPUTE_UNIT_LIMIT,
        settings.QV_ATOMIC_COMPUTE_UNIT_LIMIT,
    )
    if key not in _gateways:
        _gateways[key] = get_gateway()
    return _gateways[key]


def process_distribution(
    distribution_id: int, *, gateway: ChainGateway | None = None, actor: str = ENGINE, lock_timeout: float = 60.0
) -> Distribution:
    """Run the pipeline for one distribution (waits up to ``lock_timeout`` s for its agent
    wallet; raises ``LockTimeout``). Safe to run twice or concurrently. Returns it as it ends."""
    agent = Distribution.objects.values_list("subscription__agent_wallet__pubkey", flat=True).get(pk=distribution_id)
    with agent_wallet_locks([agent], timeout=lock_timeout) as held:
        if not held:
            raise LockTimeout(f"agent wallet {agent} is busy")
        _run(Batch(gateway or default_gateway(), actor), [distribution_id])
    return Distribution.objects.get(pk=distribution_id)


def is_pending(distribution_id: int) -> bool:
    """Whether the distribution still waits for its first run (status ``pending``)."""
    with connection.cursor() as cursor:  # plain SQL: every queued task asks this once
        cursor.execute(
            f"SELECT 1 FROM {connection.ops.quote_name(Distribution._meta.db_table)} WHERE id = %s AND status = %s",
            [distribution_id, DistributionStatus.PENDING],
        )
        return cursor.fetchone() is not None


def process_pending(
    distribution_id: int | None = None, *, gateway: ChainGateway | None = None, actor: str = ENGINE,
    limit: int | None = None,
) -> list[int]:
    """Pay ``distribution_id`` and up to ``limit`` (default ``QV_ENGINE_BATCH_SIZE``) other
    pending distributions in one batch: one per agent wallet, only wallets whose lock is free
    (the rest are left to their own tasks). Returns the ids processed."""
    limit = limit or settings.QV_ENGINE_BATCH_SIZE
    with transaction.atomic():
        rows = list(
            Distribution.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)
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
            _run(Batch(gateway or default_gateway(), actor), ids)
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


def retry_ious(
    iou_ids: list[int], *, gateway: ChainGateway | None = None, actor: str = ENGINE, lock_timeout: float = 60.0
) -> list[int]:
    """Retry many claimed IOUs (status ``processing``) in batches: each round takes the oldest
    IOU of every agent wallet whose lock is free and pays them together (one RPC round and a
    few statements per step for the whole round). IOUs whose wallet stays busy are retried one
    by one after the rounds (``retry_iou``, waiting up to ``lock_timeout`` s each; still busy:
    left ``processing`` for the resolver). Returns the ids that were run."""
    gateway = gateway or default_gateway()
    queue, seen = [], set()
    for pk, agent, distribution in (
        IOU.objects.filter(pk__in=iou_ids, status=IouStatus.PROCESSING)
        .order_by("created_at", "id")
        .values_list("pk", "subscription__agent_wallet__pubkey", "distribution_id")
    ):
        if distribution not in seen:  # one IOU per distribution: its payout pays every leg
            seen.add(distribution)
            queue.append((pk, agent))
    done: list[int] = []
    while queue:
        by_agent: dict[str, int] = {}
        for pk, agent in queue:
            by_agent.setdefault(agent, pk)
        with agent_wallet_locks(list(by_agent), timeout=0) as held:
            chosen = [by_agent[agent] for agent in held]
            if chosen:
                collect_ious(Batch(gateway, actor), list(IOU.objects.filter(pk__in=chosen, status=IouStatus.PROCESSING)))
        if not chosen:
            break
        done += chosen
        ran = set(chosen)
        queue = [(pk, agent) for pk, agent in queue if pk not in ran]
    for pk, _ in queue:  # busy wallets: wait for each in turn
        try:
            retry_iou(pk, gateway=gateway, actor=actor, lock_timeout=lock_timeout)
            done.append(pk)
        except LockTimeout:
            pass  # stays processing; the resolver finishes it when the wallet is free
    return done


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
        collect_ious(Batch(gateway, actor), [iou])


def collect_ious(batch: Batch, ious: list[IOU]) -> None:
    """Pay claimed (``processing``) IOUs of distinct agent wallets, whose locks the caller
    holds: earlier attempts are decided from the chain first; funds already withdrawn for them
    are used before any new withdraw."""
    by_dist = {iou.distribution_id: iou for iou in ious}
    batch.items = load_items(list(by_dist))
    for item in batch.items:
        item.iou = by_dist[item.dist.pk]
    resolve_attempts(batch)
    fresh = {i.pk: i for i in IOU.objects.filter(pk__in=[iou.pk for iou in ious])}
    for item in batch.live():
        item.iou = fresh[item.iou.pk]
        if item.iou.status != IouStatus.PROCESSING:
            item.stop()
            continue
        try:
            parse_address(item.dist.creator.address)
        except InvalidAddress as exc:
            owe(batch, item, IouReason.INVALID_CREATOR_WALLET, str(exc))
    hold_legs_without_accounts(batch)
    if batch.live():
        collect(batch)


def _collect_expired_first(batch: Batch) -> None:
    """Expired debts are collected first from later profits (docs/design.md, "Expired debts first"): before a
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
    preflight(batch)  # before anything is sent (docs/design.md, "SOL pre-flight")
    settle(batch)  # the new profit becomes collateral the old debts can be withdrawn from
    queues: dict[int, list[IOU]] = {}
    for iou in expired:
        queues.setdefault(iou.subscription_id, []).append(iou)
    while queues:  # one IOU per subscription (so per agent wallet) per round, oldest first
        round_ = [queue.pop(0) for queue in queues.values()]
        queues = {sub: queue for sub, queue in queues.items() if queue}
        claimed = [iou for iou in round_ if claim_iou(iou.pk, actor=batch.actor)]
        if claimed:
            collect_ious(Batch(batch.gateway, batch.actor), claimed)


def _run(batch: Batch, ids: list[int]) -> None:
    batch.items = [
        item for item in load_items(ids)
        if item.dist.status in (DistributionStatus.PENDING, DistributionStatus.PROCESSING)
    ]
    if not batch.items:
        return
    resolve_attempts(batch)
    start(batch)
    fold_dust_and_check(batch)
    finish_owing_nothing(batch)
    _collect_expired_first(batch)
    collect(batch)


def collect(batch: Batch) -> None:
    """Pay what is owed in one transaction where it can be (``atomic``); the rest step by step:
    SOL pre-flight of every transaction still to send, settle, withdraw, transfer; owe what
    remains."""
    pay_atomically(batch)
    preflight(batch)
    settle(batch)
    withdraw(batch)
    transfer(batch)
    refresh(batch.live())
    for item in batch.live():
        if item.dist.owed > 0:
            owe(batch, item, item.reason or IouReason.WITHDRAW_SHORT, item.error)
