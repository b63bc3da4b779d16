"""Property: over a randomized run of many closes with faults on, every base unit is accounted
for — for every distribution paid + owed + carried + voided = share + carry_in, the creator's
on-chain USDC equals the sum paid, and no payout landed twice."""

from __future__ import annotations

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profitshare.models import IOU, AttemptStatus, Distribution, IouStatus, PayoutAttempt
from profitshare.services import ious, leg_totals
from profitshare.services.engine import process_distribution, retry_iou
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"

faults = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "loseResponseRate": st.sampled_from([0.0, 0.3]),
        "partialWithdrawRatio": st.sampled_from([None, 0.5, 0.9]),
        "dropRate": st.sampled_from([0.0, 0.3]),
        "dropPrograms": st.just([TOKEN_PROGRAM]),
    }
)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    pnls=st.lists(st.integers(min_value=-30_000_000, max_value=60_000_000), min_size=3, max_size=10),
    bps=st.integers(0, 1_000),
    fault=faults,
    policy=st.sampled_from(["per_trade", "high_water_mark"]),
)
def test_every_base_unit_is_accounted_for(localnet, gateway, pnls, bps, fault, policy):
    world = make_world(localnet, bot__profit_share_bps=bps, bot__policy=policy)
    localnet.rpc("localnet_setFaults", fault)
    try:
        for pnl in pnls:
            result = world.close(pnl)
            if result.distribution is not None:
                process_distribution(result.distribution.pk, gateway=gateway)
        for _ in range(3):  # time passes: expired attempts can be re-signed, IOUs retried
            localnet.rpc("localnet_advanceSlots", 151)
            for distribution in Distribution.objects.filter(subscription=world.subscription, status="processing"):
                process_distribution(distribution.pk, gateway=gateway)
            for iou in IOU.objects.filter(subscription=world.subscription, status__in=["open", "expired"]):
                if ious.claim_iou(iou.pk, actor="test"):
                    retry_iou(iou.pk, gateway=gateway)
    finally:
        localnet.rpc("localnet_setFaults", {})
    distributions = Distribution.objects.filter(subscription=world.subscription)
    for d in distributions:
        assert d.paid + d.owed + d.carried + d.voided == d.share + d.carry_in
        active = IOU.objects.filter(distribution=d, status__in=[IouStatus.OPEN, IouStatus.EXPIRED])
        assert sum(i.remaining for i in active) <= d.owed
    totals = distributions.aggregate(
        paid=Sum("paid"), owed=Sum("owed"), carried=Sum("carried"), carry_in=Sum("carry_in"), share=Sum("share")
    )
    world.subscription.refresh_from_db()
    if distributions:
        assert (totals["paid"] + totals["owed"] + totals["carried"] - totals["carry_in"]) == totals["share"]
        assert totals["carried"] - totals["carry_in"] == world.subscription.dust_carry
    landed = PayoutAttempt.objects.filter(distribution__subscription=world.subscription, status=AttemptStatus.LANDED)
    paid_on_chain = sum(a.amount for a in landed)
    assert paid_on_chain == (totals["paid"] or 0)
    assert world.creator_usdc() == paid_on_chain  # no double payment: the chain agrees
    assert leg_totals.rollup_sums() == leg_totals.ledger_sums()  # the pages' running totals agree
