"""Splitting a creator's share into legs: the platform fee, three levels of referral rewards and
the creator's remainder (docs/design.md, "Splits add up", "The referral chain", "Split terms
are snapshotted").

Pure arithmetic on integers (USDC base units and basis points), except :func:`terms_in_force`,
which reads the settings and the creator's referral chain. What is paid of the legs, and how, is
the engine's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from profitshare.models import LegRole
from profitshare.selectors.referrals import referral_chain

#: Basis points in a whole share.
BPS_PER_SHARE = 10_000
#: The roles of referral levels 1, 2, 3.
REFERRAL_ROLES = (LegRole.REFERRAL_1, LegRole.REFERRAL_2, LegRole.REFERRAL_3)


def _is_bps(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class SplitTerms:
    """The split terms of one distribution.

    ``platform_fee_bps``: the platform's rate, basis points of the share (0: no platform leg);
    ``treasury``: the base58 wallet it goes to (required when the rate is above 0, "" otherwise
    allowed); ``referral``: the creator's chain as ``((wallet, bps), ...)``, level 1 (who referred
    the creator) first, at most three levels, each with its level's rate. Raises ``ValueError``
    for a negative or non-integer rate, more than three levels, a missing treasury, or rates
    adding up to 10,000 bps or more (the creator's leg must stay positive).
    """

    platform_fee_bps: int = 0
    treasury: str = ""
    referral: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if not _is_bps(self.platform_fee_bps):
            raise ValueError(f"platform_fee_bps must be a non-negative integer, got {self.platform_fee_bps!r}")
        if len(self.referral) > len(REFERRAL_ROLES):
            raise ValueError(f"at most {len(REFERRAL_ROLES)} referral levels, got {len(self.referral)}")
        for wallet, bps in self.referral:
            if not isinstance(wallet, str) or not wallet or not _is_bps(bps):
                raise ValueError(f"a referral level is (wallet, non-negative integer bps), got {(wallet, bps)!r}")
        if self.platform_fee_bps > 0 and not self.treasury:
            raise ValueError("a platform fee needs a treasury wallet")
        total = self.platform_fee_bps + sum(bps for _, bps in self.referral)
        if total >= BPS_PER_SHARE:
            raise ValueError(f"the rates add up to {total} bps; they must stay below {BPS_PER_SHARE}")

    def snapshot(self) -> dict[str, Any]:
        """The JSON recorded on ``Distribution.split_terms``: ``{"platform_fee_bps": int,
        "treasury": str, "referral": [[wallet, bps], ...]}``."""
        return {
            "platform_fee_bps": self.platform_fee_bps,
            "treasury": self.treasury,
            "referral": [[wallet, bps] for wallet, bps in self.referral],
        }


#: The terms of a distribution recorded before splits existed: the creator gets the whole share.
NO_SPLITS = SplitTerms()


def terms_of(snapshot: Mapping[str, Any]) -> SplitTerms:
    """The ``SplitTerms`` of a ``Distribution.split_terms`` snapshot (``{}``: ``NO_SPLITS``).
    Raises ``ValueError`` (or ``KeyError`` for a missing key) for a snapshot ``SplitTerms``
    refuses."""
    if not snapshot:
        return NO_SPLITS
    return SplitTerms(
        platform_fee_bps=snapshot["platform_fee_bps"],
        treasury=snapshot["treasury"],
        referral=tuple((wallet, bps) for wallet, bps in snapshot["referral"]),
    )


def terms_in_force(creator: str) -> SplitTerms:
    """The split terms for a share of ``creator`` (base58) computed now: the rates of
    ``QV_PLATFORM_FEE_BPS`` and ``QV_REFERRAL_BPS``, ``QV_PLATFORM_TREASURY``, and the creator's
    referral chain as it is now (``selectors.referrals.referral_chain``, one statement), each
    level with its rate. A chain shorter than three levels has fewer entries."""
    rates = tuple(settings.QV_REFERRAL_BPS)
    chain = referral_chain(creator, levels=len(rates))
    return SplitTerms(
        platform_fee_bps=settings.QV_PLATFORM_FEE_BPS,
        treasury=settings.QV_PLATFORM_TREASURY,
        referral=tuple(zip(chain, rates, strict=False)),
    )


@dataclass(frozen=True)
class Leg:
    """One leg of a split share: ``role`` (``LegRole``), the ``wallet`` it pays (base58),
    ``bps`` its rate (None for the creator, who gets the remainder) and ``amount`` in USDC base
    units."""

    role: LegRole
    wallet: str
    bps: int | None
    amount: int


def split_share(share: int, *, creator: str, terms: SplitTerms) -> list[Leg]:
    """Split ``share`` (USDC base units, >= 0) of ``creator`` (base58) by ``terms``.

    Returns the legs, the creator's first, then the platform's, then referral levels 1-3 in
    order. The rules (docs/design.md, "Splits add up"):

    * each leg but the creator's is ``floor(share * bps / 10_000)``; the creator's is the share
      minus all the others, so the legs add up to ``share`` exactly and the creator's leg is
      positive whenever the share is (the rates add up to less than 10,000 bps);
    * a wallet earns at most once: it takes the first role it has, in the order creator,
      platform (when its rate is above 0), level 1, 2, 3 (a level whose rate is 0 has no role);
      a level whose wallet already has a role (the creator in their own chain, the treasury, an
      earlier level) earns nothing and its part stays with the creator;
    * skipping a level does NOT move the levels above it down: every level keeps its own rate
      (with level 1 skipped, level 2 still earns the level-2 rate, and level 1's rate stays with
      the creator);
    * legs of amount 0 are left out, except the creator's, which is always there (first).

    Raises ``ValueError`` for a negative or non-integer share.
    """
    if isinstance(share, bool) or not isinstance(share, int) or share < 0:
        raise ValueError(f"share must be a non-negative integer (USDC base units), got {share!r}")
    roles: list[tuple[LegRole, str, int]] = []
    if terms.platform_fee_bps > 0:
        roles.append((LegRole.PLATFORM, terms.treasury, terms.platform_fee_bps))
    roles.extend((role, wallet, bps) for role, (wallet, bps) in zip(REFERRAL_ROLES, terms.referral, strict=False) if bps > 0)
    earning = {creator}
    others: list[Leg] = []
    for role, wallet, bps in roles:
        if wallet in earning:
            continue
        earning.add(wallet)
        amount = share * bps // BPS_PER_SHARE
        if amount > 0:
            others.append(Leg(role, wallet, bps, amount))
    creator_leg = Leg(LegRole.CREATOR, creator, None, share - sum(leg.amount for leg in others))
    return [creator_leg, *others]
