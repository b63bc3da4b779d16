"""A batch of distributions moving through the engine together (one per agent wallet), and the
bookkeeping shared by its steps."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from django.db import transaction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from profitshare.chain.gateway import ChainGateway
from profitshare.models import IOU, AttemptStatus, Distribution, DistributionLeg, LegRole
from profitshare.services import leg_totals
from profitshare.services.running_totals import add_to_running_totals
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
    legs: list[DistributionLeg] = field(default_factory=list)  # the creator's first
    #: The legs the payout being signed pays, ``[[leg id, wallet, base units]]`` (its attempt's ``legs``).
    paying: list[list] = field(default_factory=list)
    #: Legs left out of this run's payout, ``{leg id: why}``: their recipient has no USDC token
    #: account (docs/design.md, "A recipient without a token account"); they stay owed.
    held: dict[int, str] = field(default_factory=dict)

    def owed_legs(self) -> list[DistributionLeg]:
        """The legs that still owe something, the creator's first."""
        return [leg for leg in self.legs if leg.owed > 0]

    def payable_legs(self) -> list[DistributionLeg]:
        """The owed legs this run may pay (not ``held``), the creator's first."""
        return [leg for leg in self.owed_legs() if leg.pk not in self.held]

    @property
    def payable(self) -> int:
        """Base units this run may pay: the distribution's ``owed`` less what its held legs owe
        (what a withdraw asks Drift for, with what is already ``withdrawn``)."""
        return self.dist.owed - sum(leg.owed for leg in self.owed_legs() if leg.pk in self.held)

    def transfers(self, available: int) -> list[tuple[DistributionLeg, int]]:
        """What a payout of at most ``available`` base units pays each payable leg, ``[(leg, base
        units)]`` without zeros, the creator's first: every leg in full when ``available``
        covers ``payable``; otherwise each leg ``floor(leg.owed × available / payable)``, so no
        leg is favoured and the remainder (< the number of legs) stays for the next payout
        (docs/design.md, "All legs are paid together")."""
        payable = self.payable
        if payable <= 0 or available <= 0:
            return []
        if available >= payable:
            return [(leg, leg.owed) for leg in self.payable_legs()]
        shares = [(leg, leg.owed * available // payable) for leg in self.payable_legs()]
        return [(leg, amount) for leg, amount in shares if amount > 0]

    def payout_legs(self, transfers: list[tuple[DistributionLeg, int]], creator_ata_exists: bool | None) -> dict:
        """The recipient arguments of ``ChainGateway.build_payout`` / ``build_atomic_payout`` for
        ``transfers`` (``[(leg, base units)]``, not empty): the first leg as ``creator_owner`` and
        ``amount``, the rest as ``more_legs``; only the creator's ATA is ever created. Remembers
        them as ``paying``."""
        (first, amount), *rest = transfers
        self.paying = [[leg.pk, leg.wallet, leg_amount] for leg, leg_amount in transfers]
        return {
            "creator_owner": first.wallet, "amount": amount,
            "more_legs": [(leg.wallet, leg_amount) for leg, leg_amount in rest],
            "create_destination_ata": first.role == LegRole.CREATOR and not creator_ata_exists,
        }

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
    items = [Item(d, agent_keypair(d.subscription.agent_wallet)) for d in dists]
    _load_legs(items)
    return items


def _load_legs(items: list[Item]) -> None:
    legs: dict[int, list[DistributionLeg]] = {}
    for leg in DistributionLeg.objects.filter(distribution__in=[i.dist.pk for i in items]).order_by("pk"):
        legs.setdefault(leg.distribution_id, []).append(leg)
    for leg in creator_legs([i.dist for i in items if i.dist.pk not in legs]):
        legs[leg.distribution_id] = [leg]
    for item in items:
        # the creator's leg first, then the others in the order they were made
        item.legs = sorted(legs.get(item.dist.pk, []), key=lambda leg: leg.role != LegRole.CREATOR)


def creator_legs(distributions: list[Distribution], *, totals: list | None = None) -> list[DistributionLeg]:
    """Make the one creator leg of each of ``distributions`` (recorded without legs: the
    creator is paid the whole share) with the distribution's own amounts, and count them in the
    legs' running totals; returns them. A caller inside a larger transaction passes ``totals``
    (a list): the legs' deltas are appended there for it to add last (docs/design.md, "Running
    totals are written last") instead of being added here."""
    if not distributions:
        return []
    with transaction.atomic():
        legs = DistributionLeg.objects.bulk_create([
            DistributionLeg(
                distribution=d, role=LegRole.CREATOR, wallet=d.creator.address, amount=d.share, carry_in=d.carry_in,
                paid=d.paid, owed=d.owed, carried=d.carried, voided=d.voided, created_at=d.created_at,
            )
            for d in distributions
        ])
        deltas = [
            leg_totals.delta(d.creator_id, leg, legs=1, earned=leg.amount, paid=leg.paid, owed=leg.owed, voided=leg.voided)
            for d, leg in zip(distributions, legs, strict=True)
        ]
        if totals is None:
            add_to_running_totals(legs=deltas)
        else:
            totals.extend(deltas)
    return legs


def refresh(items: list[Item]) -> None:
    """Reload the ledger fields of ``items`` and their legs from the database (two queries)."""
    if not items:
        return
    fresh = {d.pk: d for d in Distribution.objects.filter(pk__in=[i.dist.pk for i in items])}
    for item in items:
        d = fresh[item.dist.pk]
        for name in ("status", "owed", "paid", "carried", "carry_in", "withdrawn", "settled", "attempts"):
            setattr(item.dist, name, getattr(d, name))
    _load_legs(items)


def group(pairs: list[tuple]) -> dict:
    """``[(key, pk)]`` to ``{key: [pk, ...]}`` (rows that get the same UPDATE)."""
    groups: dict = {}
    for key, pk in pairs:
        groups.setdefault(key, []).append(pk)
    return groups
