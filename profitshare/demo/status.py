"""What the demo page shows: the demo wallets one can sign in as (creators, referrers,
subscribers), the demo's splits, and each staged case as the database records it now, with the
legs of its split shares (read-only)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from profitshare.demo import cases, splits, world
from profitshare.demo.wallets import CREATOR, REFERRER, SUBSCRIBER, DemoWallet, keypair
from profitshare.models import (
    IOU,
    CarryReason,
    CreatorWallet,
    Distribution,
    DistributionLeg,
    LegCarry,
    LegRole,
    Referral,
    Subscription,
)
from profitshare.money import format_bps
from profitshare.services.bots import validate_wallet_address
from profitshare.services.errors import InvalidInput


def _prefix(seed: int) -> str:
    return f"demo{seed}-"


def _refers(label: str) -> str:
    referred = splits.referred_by(label)
    return f"refers {', '.join(referred)}" if referred else ""


def demo_wallets(seed: int) -> list[DemoWallet]:
    """The demo wallets that exist in the database: creators first, then referrers (a referral
    link recorded for them), then subscribers (by subscription label). Only addresses derived
    from ``seed`` are listed; ``note`` says whom a creator or referrer referred."""
    creators = {label: str(keypair(seed, CREATOR, label).pubkey()) for label in (c.label for c in world.CREATORS)}
    known = set(CreatorWallet.objects.filter(address__in=creators.values()).values_list("address", flat=True))
    wallets = [DemoWallet(CREATOR, label, address, _refers(label)) for label, address in creators.items() if address in known]
    referrers = {label: splits.wallet(seed, label) for label in splits.referrer_labels()}
    linked = set(Referral.objects.filter(referrer_wallet__in=referrers.values()).values_list("referrer_wallet", flat=True))
    wallets += [DemoWallet(REFERRER, label, address, _refers(label)) for label, address in referrers.items() if address in linked]
    rows = Subscription.objects.filter(subscription_id__startswith=_prefix(seed)).order_by("subscription_id")
    for sub_id, address in rows.values_list("subscription_id", "subscriber_wallet"):
        label = sub_id[len(_prefix(seed)):]
        if str(keypair(seed, SUBSCRIBER, label).pubkey()) == address:
            wallets.append(DemoWallet(SUBSCRIBER, label, address))
    return wallets


def wallet_keypair(seed: int, address: str):
    """The keypair of the demo wallet ``address`` (one of ``demo_wallets``), or None."""
    for wallet in demo_wallets(seed):
        if wallet.address == address:
            return wallet.role, keypair(seed, wallet.role, wallet.label)
    return None


@dataclass(frozen=True)
class CaseView:
    """One staged case as it stands: ``facts`` are short lines of what the ledger shows."""

    name: str
    title: str
    subscription_id: str
    facts: list[str]


def case_views(seed: int) -> list[CaseView]:
    """Every staged case with what the database shows for it now."""
    views = []
    for case in cases.CASES:
        sub_id = world.subscription_id(seed, case.name) if case.bot_slug else ""
        facts: list[str] = []
        if case.bot_slug is None:
            try:
                validate_wallet_address("creator_wallet", cases.INVALID_CREATOR)
            except InvalidInput as exc:
                facts.append(f"POST /api/v1/bots with creator_wallet {cases.INVALID_CREATOR}: 422, {exc.message}; nothing written")
        else:
            sub = Subscription.objects.filter(subscription_id=sub_id).first()
            if sub is not None:
                facts.append(f"subscription {sub.status}")
                dists = list(Distribution.objects.select_related("close").filter(subscription=sub).order_by("id")[:3])
                legs = _legs_by_distribution(seed, sub, dists)
                for dist in dists:
                    facts.append(
                        f"close {dist.close.close_id if dist.close_id else '(flush)'}: share {cases.usdc(dist.share)}, "
                        f"{dist.status}; paid {cases.usdc(dist.paid)}, owed {cases.usdc(dist.owed)}, carried {cases.usdc(dist.carried)}"
                    )
                    if dist.pk in legs:
                        facts.append(f"legs: {legs[dist.pk]}")
                for iou in IOU.objects.filter(subscription=sub).order_by("id"):
                    facts.append(f"IOU {iou.pk}: {iou.reason}, {iou.status}, {cases.usdc(iou.remaining)} remaining")
        views.append(CaseView(case.name, case.title, sub_id, facts))
    return views


def _legs_by_distribution(seed: int, sub: Subscription, dists: list[Distribution]) -> dict[int, str]:
    """Distribution id -> its legs on one line, for the distributions of ``dists`` split into
    more than one leg (``splits.legs_text``: role, name, amount, paid / owed / carried; a leg
    still carried because its wallet has no USDC token account says so)."""
    rows = list(DistributionLeg.objects.filter(distribution__in=dists).values(
        "distribution_id", "role", "wallet", "amount", "paid", "owed", "carried"))
    why = {w: "no USDC token account" for w in LegCarry.objects.filter(
        subscription=sub, reason=CarryReason.NO_TOKEN_ACCOUNT, amount__gt=0).values_list("wallet", flat=True)}
    names = splits.wallet_names(seed)
    by_dist: dict[int, list[dict]] = {}
    for row in sorted(rows, key=lambda r: LegRole.values.index(r["role"])):
        by_dist.setdefault(row["distribution_id"], []).append(row)
    return {pk: splits.legs_text(legs, names, why) for pk, legs in by_dist.items() if len(legs) > 1}


def split_facts(seed: int) -> list[str]:
    """The demo's splits as they stand, one short line each: the platform fee in force and its
    treasury, and each referral link the API recorded (``splits.REFERRALS``), with the referrers
    left without a USDC token account."""
    fee = settings.QV_PLATFORM_FEE_BPS
    facts = [
        f"platform fee {format_bps(fee)} of every share to the treasury {settings.QV_PLATFORM_TREASURY}"
        if fee else "no platform fee (QV_PLATFORM_FEE_BPS is 0)"
    ]
    wallets = [splits.wallet(seed, label) for label, _ in splits.REFERRALS]
    links = set(Referral.objects.filter(wallet__in=wallets).values_list("wallet", "referrer_wallet"))
    for label, referrer in splits.REFERRALS:
        if (splits.wallet(seed, label), splits.wallet(seed, referrer)) in links:
            note = " (no USDC token account: its legs are carried)" if referrer in splits.NO_ACCOUNT else ""
            facts.append(f"{referrer} referred {label}{note}")
    return facts
