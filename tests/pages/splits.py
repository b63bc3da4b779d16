"""Split shares for the page tests: a creator with a three-level referral chain and a platform
fee, closes recorded by the intake service (which makes the legs), and legs moved to the
figures the engine would leave, as the creator's page tests set distributions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from solders.keypair import Keypair

from profitshare.models import IOU, Distribution, DistributionLeg, IouReason, Subscription
from profitshare.services import leg_totals
from profitshare.services.intake import CloseReport, record_close
from profitshare.services.referrals import link_referral

RATES = (500, 200, 100)  # referral levels 1-3, basis points of the share
FEE_BPS = 150
_close_ids = itertools.count(1)


def address() -> str:
    """A fresh wallet address (base58)."""
    return str(Keypair().pubkey())


@dataclass
class Chain:
    """A creator's subscription (10 %) and the wallets its shares split to."""

    subscription: Subscription
    treasury: str
    referrers: list[str] = field(default_factory=list)
    key: Keypair | None = None  # level 1's keypair, when a test signs in with it

    @property
    def creator(self) -> str:
        """The creator's wallet address."""
        return self.subscription.bot.creator.address


def configure(settings, treasury: str) -> None:
    """The settings of a split: referral rates 5 / 2 / 1 %, a 1.5 % fee to ``treasury``."""
    settings.QV_REFERRAL_BPS = RATES
    settings.QV_PLATFORM_FEE_BPS = FEE_BPS
    settings.QV_PLATFORM_TREASURY = treasury


def link_chain(creator: str, referrers: list[str]) -> None:
    """``referrers[0]`` referred the creator, ``referrers[1]`` referred ``referrers[0]``, …"""
    for wallet, referrer in zip([creator, *referrers], referrers, strict=False):
        link_referral(wallet, referrer)


def record(sub: Subscription, pnl: int) -> Distribution:
    """Report a close of ``pnl`` USDC base units through the intake service; its distribution."""
    report = CloseReport(
        f"legs-close-{next(_close_ids)}", sub.subscription_id, 0, pnl, "full", datetime.now(UTC)
    )
    return record_close(report, actor="test").distribution


def leg_of(distribution: Distribution, role: str) -> DistributionLeg:
    """The distribution's leg of ``role``."""
    return DistributionLeg.objects.get(distribution=distribution, role=role)


def settle(
    leg: DistributionLeg, *, paid: int = 0, carried: int = 0, voided: int = 0
) -> DistributionLeg:
    """Move a leg to ``paid``, ``carried`` and ``voided``; the rest of its due stays owed (and
    the legs' running totals follow, as the engine keeps them)."""
    owed = leg.amount + leg.carry_in - paid - carried - voided
    DistributionLeg.objects.filter(pk=leg.pk).update(
        paid=paid, owed=owed, carried=carried, voided=voided
    )
    leg_totals.rebuild()
    leg.refresh_from_db()
    return leg


def pay_all(distribution: Distribution) -> None:
    """Every leg of the distribution paid in full; the distribution ``paid``."""
    for leg in distribution.legs.all():
        settle(leg, paid=leg.amount + leg.carry_in)
    Distribution.objects.filter(pk=distribution.pk).update(status="paid")


def owe(
    leg: DistributionLeg | None,
    distribution: Distribution,
    amount: int,
    *,
    reason=IouReason.INSUFFICIENT_SOL,
) -> IOU:
    """An open IOU of ``amount`` for ``leg`` (None: an IOU recorded without a leg, owed to the
    creator)."""
    later = timezone.now() + timedelta(days=7)
    return IOU.objects.create(
        distribution=distribution,
        subscription=distribution.subscription,
        creator=distribution.creator,
        leg=leg,
        amount=amount,
        reason=reason,
        next_retry_at=later,
        expires_at=later,
    )
