"""A batch of distributions moving through the engine together (one per agent wallet), and the
bookkeeping shared by its steps."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from profitshare.chain.gateway import ChainGateway
from profitshare.models import IOU, AttemptStatus, Distribution
from profitshare.services.subscriptions import agent_keypair

UNRESOLVED_ATTEMPTS = (AttemptStatus.PREPARED, AttemptStatus.SENT)


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
    agent_ata_exists: bool | None = None  # None: not read yet

    @functools.cached_property
    def agent(self) -> Pubkey:
        return self.keypair.pubkey()

    def stop(self) -> None:
        self.active = False

    def fall_short(self, reason: str, error: str) -> None:
        if not self.reason:
            self.reason, self.error = reason, error


@dataclass
class Batch:
    """The items of one run, the gateway they use and who acts (``actor`` in audit events)."""
    gateway: ChainGateway
    actor: str
    items: list[Item] = field(default_factory=list)

    def live(self) -> list[Item]:
        return [item for item in self.items if item.active]


def load_items(ids: list[int]) -> list[Item]:
    """Items for distribution ``ids`` (ordered by id) with their agent keypairs decrypted."""
    dists = Distribution.objects.select_related(
        "subscription__agent_wallet", "subscription__bot", "creator", "close"
    ).filter(pk__in=ids).order_by("id")
    return [Item(d, agent_keypair(d.subscription.agent_wallet)) for d in dists]


def refresh(items: list[Item]) -> None:
    """Reload the ledger fields of ``items`` from the database (one query)."""
    fresh = {d.pk: d for d in Distribution.objects.filter(pk__in=[i.dist.pk for i in items])}
    for item in items:
        d = fresh[item.dist.pk]
        for name in ("status", "owed", "paid", "carried", "carry_in", "withdrawn", "settled", "attempts"):
            setattr(item.dist, name, getattr(d, name))


def group(pairs: list[tuple]) -> dict:
    """``[(key, pk)]`` to ``{key: [pk, ...]}`` (rows that get the same UPDATE)."""
    groups: dict = {}
    for key, pk in pairs:
        groups.setdefault(key, []).append(pk)
    return groups
