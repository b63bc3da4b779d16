"""What the demo page shows: the demo wallets one can sign in as, and each staged case as the
database records it now (read-only)."""

from __future__ import annotations

from dataclasses import dataclass

from profitshare.demo import cases, world
from profitshare.demo.wallets import CREATOR, SUBSCRIBER, DemoWallet, keypair
from profitshare.models import IOU, CreatorWallet, Distribution, Subscription
from profitshare.services.bots import validate_wallet_address
from profitshare.services.errors import InvalidInput


def _prefix(seed: int) -> str:
    return f"demo{seed}-"


def demo_wallets(seed: int) -> list[DemoWallet]:
    """The demo wallets that exist in the database: creators first, then subscribers (by
    subscription label). Only addresses derived from ``seed`` are listed."""
    creators = {label: str(keypair(seed, CREATOR, label).pubkey()) for label in (c.label for c in world.CREATORS)}
    known = set(CreatorWallet.objects.filter(address__in=creators.values()).values_list("address", flat=True))
    wallets = [DemoWallet(CREATOR, label, address) for label, address in creators.items() if address in known]
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
                for dist in Distribution.objects.select_related("close").filter(subscription=sub).order_by("id")[:3]:
                    facts.append(
                        f"close {dist.close.close_id if dist.close_id else '(flush)'}: share {cases.usdc(dist.share)}, "
                        f"{dist.status}; paid {cases.usdc(dist.paid)}, owed {cases.usdc(dist.owed)}, carried {cases.usdc(dist.carried)}"
                    )
                for iou in IOU.objects.filter(subscription=sub).order_by("id"):
                    facts.append(f"IOU {iou.pk}: {iou.reason}, {iou.status}, {cases.usdc(iou.remaining)} remaining")
        views.append(CaseView(case.name, case.title, sub_id, facts))
    return views
