"""Earnings rollups against the ledger after real engine runs on the local node: first-try
payouts, a batch of several agents, a partial withdraw whose rest an IOU retry pays, an IOU
paid after a SOL top-up, a void; the rollups equal the distributions' sums, ``rebuild``
recomputes the same rows, and a rolled-back ledger change leaves no rollup behind."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from profitshare.models import (
    IOU,
    Distribution,
    DistributionLeg,
    EarningsDay,
    IouStatus,
    SubscriptionEarnings,
)
from profitshare.services import earnings, ious, leg_totals
from profitshare.services.engine import process_pending, retry_iou_now
from profitshare.services.running_totals import add_to_running_totals
from tests.pages.conftest import pay
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)


def test_rollups_equal_the_ledger_after_real_payouts_retries_and_voids(localnet, gateway):
    first = make_world(localnet, bot__name="Momentum")
    pay(first, gateway, 40_000_000)  # 4 USDC, first try
    pay(first, gateway, 25_000_000)  # 2.5 USDC
    bot = first.subscription.bot

    # a partial withdraw: 60 % arrives and is paid, the rest is an IOU paid by a retry
    partial = make_world(localnet, bot=bot)
    localnet.rpc("localnet_setFaults", {"partialWithdrawRatio": 0.6})
    try:
        short = pay(partial, gateway, 50_000_000)
    finally:
        localnet.rpc("localnet_setFaults", {})
    assert (short.paid, short.owed) == (3_000_000, 2_000_000)
    short_iou = IOU.objects.get(distribution=short)
    assert retry_iou_now(short_iou.pk, actor="test", gateway=gateway).status == IouStatus.PAID

    # no SOL: an IOU, paid after a top-up; and another one that an admin voids
    broke = make_world(localnet, lamports=1_000_000, bot=bot)
    owed = pay(broke, gateway, 30_000_000)
    localnet.rpc("requestAirdrop", broke.subscription.agent_wallet.pubkey, 100_000_000)
    assert retry_iou_now(IOU.objects.get(distribution=owed).pk, actor="test", gateway=gateway).status == IouStatus.PAID
    voided_world = make_world(localnet, lamports=1_000_000)  # another creator's bot
    void_dist = pay(voided_world, gateway, 70_000_000)
    ious.void_iou(IOU.objects.get(distribution=void_dist).pk, reason="creator waived it", actor="admin:test")

    # three agents paid in one engine batch
    batch = [make_world(localnet, bot=bot) for _ in range(3)]
    dists = [w.close(10_000_000 * (n + 1)).distribution for n, w in enumerate(batch)]
    assert sorted(process_pending(dists[0].pk, gateway=gateway)) == sorted(d.pk for d in dists)

    ledger, rollups = earnings.ledger_sums(), earnings.rollup_sums()
    assert rollups == ledger
    creator = bot.creator_id
    day = Distribution.objects.filter(creator_id=creator).first().created_at.astimezone(UTC).date()
    row = EarningsDay.objects.get(creator_id=creator, bot=bot, day=day)
    # 4 + 2.5 + (3 + 2) + 3 + (1 + 2 + 3) USDC over 7 paid closes, what the creator's wallet got
    assert (row.paid, row.paid_closes) == (20_500_000, 7)
    assert first.creator_usdc() == 20_500_000
    assert SubscriptionEarnings.objects.get(subscription=partial.subscription).paid == 5_000_000
    voided = SubscriptionEarnings.objects.get(subscription=voided_world.subscription)
    assert (voided.paid, voided.paid_closes, voided.voided) == (0, 0, 7_000_000)

    # recomputed from the ledger: the same rows
    assert earnings.rebuild() == {"days": len(ledger["days"]), "subscriptions": len(ledger["subscriptions"])}
    assert earnings.rollup_sums() == ledger
    call_command("rebuild_earnings", "--check")


def test_a_batch_is_two_statements_and_a_rollback_leaves_no_rollup(localnet, gateway):
    world = make_world(localnet)
    bot = world.subscription.bot
    dists = [
        Distribution.objects.create(  # already paid in the ledger: 40 subscriptions, 1 USDC each
            subscription=make_world(localnet, lamports=0, collateral=0, bot=bot).subscription, creator_id=bot.creator_id,
            bot=bot, realized_pnl=10_000_000, profit_share_bps=1000, policy="per_trade", share=1_000_000, owed=0,
            paid=1_000_000, status="paid",
        )
        for _ in range(40)
    ]
    with CaptureQueriesContext(connection) as queries:
        earnings.record_paid([(d, 1_000_000) for d in dists])
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("BEGIN", "COMMIT"))]
    assert len(statements) == 2 and all(s.startswith("INSERT") for s in statements)  # one upsert per table
    assert SubscriptionEarnings.objects.filter(bot=bot, paid=1_000_000, paid_closes=1).count() == 40
    assert earnings.rollup_sums() == earnings.ledger_sums()

    owed = world.close(20_000_000).distribution  # 2 USDC owed, not paid yet
    before = earnings.rollup_sums()
    with pytest.raises(RuntimeError), transaction.atomic():  # as the engine calls it
        Distribution.objects.filter(pk=owed.pk).update(paid=500_000, owed=1_500_000)
        with CaptureQueriesContext(connection) as queries:
            earnings.record_paid([(Distribution.objects.get(pk=owed.pk), 500_000)])
        assert not [q for q in queries.captured_queries if "SAVEPOINT" in q["sql"].upper()]  # no round trips of its own
        assert earnings.rollup_sums() != before
        raise RuntimeError("the ledger change rolls back")
    assert earnings.rollup_sums() == before == earnings.ledger_sums()


def test_record_paid_refuses_bad_amounts_and_writes_nothing(localnet, gateway):
    world = make_world(localnet)
    dist = pay(world, gateway, 40_000_000)
    before = earnings.rollup_sums()
    with pytest.raises(ValueError, match="positive"):
        earnings.record_paid([(dist, 0)])
    with pytest.raises(ValueError, match="below the payouts"):
        earnings.record_paid([(dist, dist.paid + 1)])
    with pytest.raises(ValueError, match="positive"):
        earnings.record_voided(dist, -1)
    assert earnings.rollup_sums() == before


def test_the_running_totals_refuse_bad_amounts_before_writing_any(localnet, gateway):
    world = make_world(localnet)
    dist = pay(world, gateway, 40_000_000)
    leg = DistributionLeg.objects.get(distribution=dist)
    before = (earnings.rollup_sums(), leg_totals.rollup_sums())
    for bad in ({"paid": [(dist, 0)]}, {"voided": [(dist, -5)]}):
        with pytest.raises(ValueError, match="positive"):
            add_to_running_totals(legs=[leg_totals.delta(dist.creator_id, leg, paid=1, owed=-1)], **bad)
    assert (earnings.rollup_sums(), leg_totals.rollup_sums()) == before
