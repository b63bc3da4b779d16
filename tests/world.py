"""Building a world on the local node for engine tests: a funded subscription, closes."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from profitshare.models import Subscription
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
    distribution ``fields`` (``withdrawn``, ``status``...)."""
    from profitshare.models import Distribution, DistributionLeg, LegRole

    Distribution.objects.filter(pk=distribution.pk).update(paid=paid, owed=owed, **fields)
    DistributionLeg.objects.filter(distribution=distribution, role=LegRole.CREATOR).update(paid=paid, owed=owed)


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
