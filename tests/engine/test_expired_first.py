"""Expired debts are collected first from later profits (docs/design.md, "Expired
debts first"): before a
subscription's new share is paid, its expired IOUs are paid, oldest first, on the local node."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from profitshare.models import (
    IOU,
    AttemptStatus,
    DistributionStatus,
    IouReason,
    IouStatus,
    PayoutAttempt,
)
from profitshare.services.engine import process_distribution
from profitshare.services.ttl import expire_due_ious
from tests.world import make_world, owe_for_lack_of_sol

pytestmark = pytest.mark.django_db(transaction=True)


def expired_debt(localnet, gateway, pnl: int = 40_000_000):
    """A subscription (10 %) whose first share (pnl/10) is an IOU for lack of SOL, now expired;
    the agent then gets SOL back."""
    world, first, iou = owe_for_lack_of_sol(localnet, gateway, pnl, collateral=0)
    assert iou.reason == IouReason.INSUFFICIENT_SOL
    IOU.objects.filter(pk=iou.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_due_ious() == [iou.pk]
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    return world, first, iou


def test_the_expired_debt_is_paid_before_the_new_share(localnet, gateway):
    world, first, iou = expired_debt(localnet, gateway)
    second = world.close(20_000_000).distribution  # share 2 USDC

    process_distribution(second.pk, gateway=gateway)

    iou.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (iou.status, iou.paid_amount) == (IouStatus.PAID, 4_000_000)
    assert (first.status, first.paid, first.owed) == (DistributionStatus.PAID, 4_000_000, 0)
    assert (second.status, second.paid, second.owed) == (DistributionStatus.PAID, 2_000_000, 0)
    assert world.creator_usdc() == 6_000_000
    old, new = PayoutAttempt.objects.filter(status=AttemptStatus.LANDED).order_by("id")
    assert (old.distribution_id, old.iou_id, new.distribution_id) == (first.pk, iou.pk, second.pk)
    assert old.slot <= new.slot


def test_when_funds_are_short_the_old_debt_is_paid_in_full_and_the_new_share_owes(localnet, gateway):
    world, first, iou = expired_debt(localnet, gateway)
    # the debt expired, so the subscriber could settle and withdraw everything from Drift
    sub = world.subscription
    gateway.send_signed(gateway.build_settle(world.agent, sub.drift_subaccount_id, 0))
    collateral = int(world.drift()["collateral"])
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, sub.drift_subaccount_id, collateral,
                 sub.subscriber_wallet)
    second = world.close(4_200_000).distribution  # share 420_000; 4.2 USDC of new collateral

    process_distribution(second.pk, gateway=gateway)

    iou.refresh_from_db()
    second.refresh_from_db()
    assert (iou.status, iou.paid_amount) == (IouStatus.PAID, 4_000_000)
    # Drift's scaled balances leave 4,199,999 of the 4.2 USDC settled: one base unit more is owed
    assert (second.paid, second.owed) == (199_999, 220_001)
    new_iou = IOU.objects.get(distribution=second)
    assert (new_iou.status, new_iou.reason, new_iou.remaining) == (IouStatus.OPEN, IouReason.WITHDRAW_SHORT, 220_001)
    assert world.creator_usdc() == 4_199_999


def test_a_subscription_without_expired_debts_is_paid_as_usual(localnet, gateway):
    world = make_world(localnet)
    _, _, other_iou = expired_debt(localnet, gateway)  # someone else's expired debt is not ours to collect
    dist = world.close(10_000_000).distribution
    process_distribution(dist.pk, gateway=gateway)
    dist.refresh_from_db()
    other_iou.refresh_from_db()
    assert (dist.status, dist.paid) == (DistributionStatus.PAID, 1_000_000)
    assert other_iou.status == IouStatus.EXPIRED
