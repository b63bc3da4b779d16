"""Building a world on the local node for engine tests: a funded subscription, closes."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import F
from django.utils import timezone
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from profitshare.models import (
    AttemptStatus,
    Distribution,
    DistributionLeg,
    DistributionStatus,
    LegRole,
    PayoutAttempt,
    Subscription,
)
from profitshare.services.intake import CloseReport, IntakeResult, record_close
from profitshare.services.subscriptions import agent_keypair
from tests.factories import SubscriptionFactory

USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
_close_ids = itertools.count(1)


@dataclass
class World:
    """A subscription whose agent wallet has SOL and Drift collateral on the node."""

    localnet: object
    subscription: Subscription

    @property
    def agent(self) -> Keypair:
        return agent_keypair(self.subscription.agent_wallet)

    @property
    def creator(self) -> Pubkey:
        return Pubkey.from_string(self.subscription.bot.creator.address)

    def close(self, pnl: int, *, realize: bool = True, market_index: int = 0, kind: str = "full") -> IntakeResult:
        """A position closes with ``pnl`` in perp market ``market_index``: realized on the
        subscriber's Drift account (Drift's own ``settle_pnl`` settles it), then reported."""
        sub = self.subscription
        if realize:
            self.localnet.rpc(
                "localnet_driftRealizePnl", sub.agent_wallet.pubkey, sub.drift_subaccount_id, pnl, market_index
            )
        report = CloseReport(
            close_id=f"close-{next(_close_ids)}",
            subscription_id=sub.subscription_id,
            market_index=market_index,
            realized_pnl=pnl,
            kind=kind,
            closed_at=datetime.now(UTC),
        )
        return record_close(report)

    def creator_usdc(self) -> int:
        return token_balance(self.localnet, self.creator)

    def agent_usdc(self) -> int:
        return token_balance(self.localnet, self.agent.pubkey())

    def agent_lamports(self) -> int:
        return self.localnet.rpc("getBalance", str(self.agent.pubkey()))["value"]

    def drift(self) -> dict:
        sub = self.subscription
        return self.localnet.rpc("localnet_driftAccount", sub.agent_wallet.pubkey, sub.drift_subaccount_id)


def rewrite_ledger(distribution, *, paid: int, owed: int, **fields) -> None:
    """Put a distribution paid to its creator alone (no splits) back into a past state of its
    ledger: ``paid`` and ``owed`` (base units) on the row and on its creator leg, plus other
    distribution ``fields`` (``withdrawn``, ``status``...); the legs' running totals follow."""
    from profitshare.models import Distribution, DistributionLeg, LegRole
    from profitshare.services import leg_totals

    Distribution.objects.filter(pk=distribution.pk).update(paid=paid, owed=owed, **fields)
    DistributionLeg.objects.filter(distribution=distribution, role=LegRole.CREATOR).update(paid=paid, owed=owed)
    leg_totals.rebuild()


def token_balance(localnet, owner: Pubkey) -> int:
    ata = get_associated_token_address(owner, USDC)
    info = localnet.rpc("getAccountInfo", str(ata), {"encoding": "base64"})["value"]
    if info is None:
        return 0
    return int(localnet.rpc("getTokenAccountBalance", str(ata))["value"]["amount"])


def make_world(localnet, *, lamports: int = 100_000_000, collateral: int = 1_000_000_000, **sub_kwargs) -> World:
    """A subscription (factory) whose agent has ``lamports`` SOL and ``collateral`` USDC base
    units deposited in its Drift subaccount (a real Drift deposit on the node)."""
    sub = SubscriptionFactory(**sub_kwargs)
    if lamports:
        localnet.rpc("requestAirdrop", sub.agent_wallet.pubkey, lamports)
    if collateral:
        localnet.rpc("localnet_driftDeposit", sub.agent_wallet.pubkey, sub.drift_subaccount_id, collateral)
    return World(localnet, sub)


def owe_for_lack_of_sol(localnet, gateway, pnl: int = 40_000_000, **world_kwargs):
    """A real IOU: the agent has too little SOL for a payout (0.001 SOL), so the engine owes
    the whole share of a ``pnl`` close (10 % by default: 4 USDC). Returns ``(world,
    distribution, iou)``."""
    from profitshare.models import IOU
    from profitshare.services.engine import process_distribution

    world = make_world(localnet, lamports=1_000_000, **world_kwargs)
    distribution = world.close(pnl).distribution
    process_distribution(distribution.pk, gateway=gateway)
    return world, distribution, IOU.objects.get(distribution=distribution)


def legs_of(dist: Distribution) -> list[DistributionLeg]:
    """A distribution's legs in payout order: creator, platform, referral levels 1-3."""
    order = list(LegRole)
    return sorted(DistributionLeg.objects.filter(distribution=dist), key=lambda leg: order.index(leg.role))


def fund_payout(localnet, world: World, dist: Distribution) -> list[DistributionLeg]:
    """Ready ``dist``'s payout of every leg in one transaction: the share in the agent's USDC
    token account, and a token account (1 base unit in it) for every recipient but the creator
    (a payout creates the creator's only). Returns ``legs_of(dist)``."""
    legs = legs_of(dist)
    for leg in legs[1:]:
        localnet.rpc("localnet_fundUsdc", leg.wallet, 1)
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), dist.share)
    return legs


def pay_legs(gateway, world: World, dist: Distribution, legs: list[DistributionLeg], *, paid=None, recorded=None):
    """Pay ``paid`` legs (default ``legs``) in one real transaction (``gateway.build_payout(...,
    more_legs=...)``, the first leg's recipient first), record it as a landed ``PayoutAttempt``
    naming ``recorded`` legs (default the ones paid: ``[[leg id, wallet, base units], ...]``), and
    credit the ledger as the engine does: each recorded leg paid in full, the distribution the
    sum. Returns the attempt."""
    paid = legs if paid is None else paid
    recorded = paid if recorded is None else recorded
    signed = gateway.build_payout(
        world.agent, paid[0].wallet, paid[0].amount, reference=f"qv:d{dist.pk}:a1",
        more_legs=[(leg.wallet, leg.amount) for leg in paid[1:]],
    )
    gateway.send_signed(signed.transaction)
    status = gateway.wait_for({signed.signature: signed.last_valid_block_height}, timeout=gateway.confirm_timeout)
    assert status[signed.signature].state == "landed", status
    credited = sum(leg.amount for leg in recorded)
    attempt = PayoutAttempt.objects.create(
        distribution=dist, agent_wallet=world.subscription.agent_wallet, amount=credited,
        legs=[[leg.pk, leg.wallet, leg.amount] for leg in recorded], signature=signed.signature,
        raw_transaction=signed.raw, blockhash=signed.blockhash, last_valid_block_height=signed.last_valid_block_height,
        destination_owner=str(signed.destination_owner), destination_ata=str(signed.destination_ata),
        status=AttemptStatus.LANDED, slot=status[signed.signature].slot, sent_at=timezone.now(),
        resolved_at=timezone.now(),
    )
    DistributionLeg.objects.filter(pk__in=[leg.pk for leg in recorded]).update(paid=F("amount"), owed=0)
    Distribution.objects.filter(pk=dist.pk).update(
        paid=F("paid") + credited, owed=F("owed") - credited,
        status=DistributionStatus.PAID if credited == dist.owed else DistributionStatus.PARTIALLY_PAID,
    )
    return attempt


@contextlib.contextmanager
def wallet_held_elsewhere(agent_pubkey: str) -> Iterator[None]:
    """Another worker (a thread with its own database connection) holds the agent wallet's
    payout lock while the block runs; released when it ends."""
    from django.db import connection

    from profitshare.services.locks import agent_wallet_lock

    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            with agent_wallet_lock(agent_pubkey, timeout=5):
                held.set()
                release.wait(30)
        finally:
            connection.close()

    worker = threading.Thread(target=hold)
    worker.start()
    try:
        assert held.wait(10), "the other worker never took the lock"
        yield
    finally:
        release.set()
        worker.join()
