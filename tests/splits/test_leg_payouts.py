"""The legs of a split share are paid together on the real Drift program (docs/design.md,
"Splits add up", "All legs are paid together", "Dust is carried per recipient"): balances on
the local node, legs, IOUs and carries in PostgreSQL."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair

from profitshare.models import (
    IOU,
    AttemptStatus,
    CarryReason,
    DistributionLeg,
    DistributionStatus,
    IouReason,
    IouStatus,
    LegCarry,
    LegRole,
    PayoutAttempt,
)
from profitshare.services.engine import process_distribution, retry_iou_now
from tests.splits.legs import (
    EXPECTED,
    SHARE,
    assert_legs_add_up,
    balances,
    legs_of,
    transfers_in,
    wallet,
)
from tests.world import token_balance

pytestmark = pytest.mark.django_db(transaction=True)

def test_every_leg_lands_in_the_one_atomic_transaction(localnet, gateway, splits):
    world = splits["world"]()
    before = balances(localnet, splits, world)
    distribution = world.close(100_000_000).distribution
    assert distribution.share == SHARE
    process_distribution(distribution.pk, gateway=gateway)
    (attempt,) = PayoutAttempt.objects.filter(distribution=distribution)
    assert (attempt.status, attempt.path, attempt.amount, attempt.withdraw_amount) == ("landed", "atomic", SHARE, SHARE)
    assert transfers_in(localnet, attempt.signature) == [EXPECTED[role] for role in (
        LegRole.CREATOR, LegRole.PLATFORM, LegRole.REFERRAL_1, LegRole.REFERRAL_2, LegRole.REFERRAL_3)]
    after = balances(localnet, splits, world)
    assert {role: after[role] - before[role] for role in after} == EXPECTED
    assert legs_of(distribution) == {role: (amount, amount, 0, 0) for role, amount in EXPECTED.items()}
    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid, distribution.owed) == (DistributionStatus.PAID, SHARE, 0)
    assert [leg_id for leg_id, _, _ in attempt.legs] == list(
        DistributionLeg.objects.filter(distribution=distribution).order_by("pk").values_list("pk", flat=True))
    assert world.agent_usdc() == 0


def test_the_step_by_step_path_pays_every_leg_in_one_transfer_in_proportion_to_what_arrived(localnet, gateway, splits):
    world = splits["world"]()
    before = balances(localnet, splits, world)
    distribution = world.close(100_000_000).distribution
    localnet.rpc("localnet_setFaults", {"partialWithdrawRatio": 0.5})
    process_distribution(distribution.pk, gateway=gateway)
    localnet.rpc("localnet_setFaults", {})
    (attempt,) = PayoutAttempt.objects.filter(distribution=distribution)
    assert (attempt.status, attempt.path, attempt.amount) == ("landed", "transfer", SHARE // 2)
    after = balances(localnet, splits, world)
    assert {role: after[role] - before[role] for role in after} == {role: a // 2 for role, a in EXPECTED.items()}
    ious = IOU.objects.filter(distribution=distribution).select_related("leg")
    assert {iou.leg.role: (iou.remaining, iou.reason) for iou in ious} == {
        role: (amount - amount // 2, IouReason.WITHDRAW_SHORT) for role, amount in EXPECTED.items()}
    # the retry pays every leg what it still owes, again in one transaction
    creator_iou = ious.get(leg__role=LegRole.CREATOR)
    retry_iou_now(creator_iou.pk, actor="test", gateway=gateway)
    after = balances(localnet, splits, world)
    assert {role: after[role] - before[role] for role in after} == EXPECTED
    assert set(IOU.objects.filter(distribution=distribution).values_list("status", flat=True)) == {IouStatus.PAID}
    second = PayoutAttempt.objects.filter(distribution=distribution).exclude(pk=attempt.pk).get()
    assert second.status == AttemptStatus.LANDED and len(second.legs) == 5


def test_a_payout_that_cannot_be_made_owes_every_leg_and_its_retry_pays_them_together(localnet, gateway, splits):
    world = splits["world"](lamports=1_000_000)  # too little SOL for any payout
    distribution = world.close(100_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    ious = list(IOU.objects.filter(distribution=distribution).select_related("leg"))
    assert {iou.leg.role: (iou.amount, iou.reason, iou.status) for iou in ious} == {
        role: (amount, IouReason.INSUFFICIENT_SOL, IouStatus.OPEN) for role, amount in EXPECTED.items()}
    assert {iou.leg.wallet for iou in ious if iou.leg.role == LegRole.REFERRAL_2} == {str(splits[LegRole.REFERRAL_2])}
    assert not PayoutAttempt.objects.filter(distribution=distribution).exists()
    before = balances(localnet, splits, world)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    referral_iou = next(iou for iou in ious if iou.leg.role == LegRole.REFERRAL_3)
    retry_iou_now(referral_iou.pk, actor="test", gateway=gateway)  # any leg's IOU retries the payout
    after = balances(localnet, splits, world)
    assert {role: after[role] - before[role] for role in after} == EXPECTED
    assert set(IOU.objects.filter(distribution=distribution).values_list("status", flat=True)) == {IouStatus.PAID}
    (attempt,) = PayoutAttempt.objects.filter(distribution=distribution)
    assert attempt.path == "atomic" and len(transfers_in(localnet, attempt.signature)) == 5


def test_a_leg_whose_wallet_has_no_token_account_is_carried_for_it_until_it_has_one(localnet, gateway, splits, settings):
    stranger = wallet()  # the treasury moves to a wallet without a USDC token account
    settings.QV_PLATFORM_TREASURY = str(stranger)
    world = splits["world"]()
    first = world.close(100_000_000).distribution
    process_distribution(first.pk, gateway=gateway)
    legs = legs_of(first)
    assert legs[LegRole.PLATFORM] == (150_000, 0, 0, 150_000)
    assert legs[LegRole.CREATOR] == (9_050_000, 9_050_000, 0, 0)
    carry = LegCarry.objects.get(subscription=world.subscription, wallet=str(stranger))
    assert (carry.amount, carry.reason, carry.role) == (150_000, CarryReason.NO_TOKEN_ACCOUNT, LegRole.PLATFORM)
    assert token_balance(localnet, stranger) == 0  # the subscriber paid no rent for it
    (attempt,) = PayoutAttempt.objects.filter(distribution=first)
    assert attempt.amount == SHARE - 150_000 and len(attempt.legs) == 4
    first.refresh_from_db()
    assert (first.status, first.paid, first.carried) == (DistributionStatus.PAID, SHARE - 150_000, 150_000)

    localnet.rpc("localnet_fundUsdc", str(stranger), 1)  # the treasury's account now exists
    second = world.close(100_000_000).distribution
    process_distribution(second.pk, gateway=gateway)
    platform = DistributionLeg.objects.get(distribution=second, role=LegRole.PLATFORM)
    assert (platform.amount, platform.carry_in, platform.paid) == (150_000, 150_000, 300_000)
    assert token_balance(localnet, stranger) == 1 + 300_000
    carry.refresh_from_db()
    assert carry.amount == 0


def test_dust_is_carried_per_recipient_and_paid_once_its_carry_crosses_the_threshold(localnet, gateway, splits, settings):
    settings.QV_DUST_THRESHOLD = 10_000
    world = splits["world"]()
    before = balances(localnet, splits, world)
    # 10 % of 6 USDC = 0.6 USDC: the platform's 1.5 % (9,000) and level 3's 1 % (6,000) are dust
    first = world.close(6_000_000).distribution
    process_distribution(first.pk, gateway=gateway)
    legs = legs_of(first)
    assert (legs[LegRole.PLATFORM], legs[LegRole.REFERRAL_3]) == ((9_000, 0, 0, 9_000), (6_000, 0, 0, 6_000))
    assert legs[LegRole.REFERRAL_1] == (30_000, 30_000, 0, 0)
    carries = {c.role: (c.amount, c.reason) for c in LegCarry.objects.filter(subscription=world.subscription)}
    assert carries == {LegRole.PLATFORM: (9_000, CarryReason.DUST), LegRole.REFERRAL_3: (6_000, CarryReason.DUST)}
    mid = balances(localnet, splits, world)
    assert mid[LegRole.REFERRAL_3] == before[LegRole.REFERRAL_3]  # carried, not handed to anyone else
    assert mid[LegRole.CREATOR] - before[LegRole.CREATOR] == 600_000 - 9_000 - 30_000 - 12_000 - 6_000
    second = world.close(6_000_000).distribution
    process_distribution(second.pk, gateway=gateway)
    legs = {leg.role: leg for leg in DistributionLeg.objects.filter(distribution=second)}
    assert (legs[LegRole.REFERRAL_3].carry_in, legs[LegRole.REFERRAL_3].paid) == (6_000, 12_000)
    assert (legs[LegRole.PLATFORM].carry_in, legs[LegRole.PLATFORM].paid) == (9_000, 18_000)
    after = balances(localnet, splits, world)
    assert after[LegRole.REFERRAL_3] - before[LegRole.REFERRAL_3] == 12_000
    assert after[LegRole.PLATFORM] - before[LegRole.PLATFORM] == 18_000
    second.refresh_from_db()
    assert (second.carry_in, second.paid, second.owed) == (15_000, 615_000, 0)


def test_claiming_one_legs_iou_claims_the_others_and_voiding_one_leaves_the_rest_owed(localnet, gateway, splits):
    from datetime import timedelta

    from django.utils import timezone

    from profitshare.services import ious

    world = splits["world"](lamports=1_000_000)
    distribution = world.close(100_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    referral = IOU.objects.get(distribution=distribution, leg__role=LegRole.REFERRAL_1)
    ious.void_iou(referral.pk, reason="referrer asked to waive it", actor="admin:test")
    voided = DistributionLeg.objects.get(pk=referral.leg_id)
    assert (voided.owed, voided.voided) == (0, 500_000)
    assert_legs_add_up(distribution)
    assert distribution.voided == 500_000 and distribution.owed == SHARE - 500_000

    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    claimed = ious.claim_due_ious(now=timezone.now() + timedelta(days=1))
    assert len(claimed) == 4  # the four legs still owed, claimed together
    assert set(IOU.objects.filter(pk__in=claimed).values_list("status", flat=True)) == {IouStatus.PROCESSING}
    from profitshare.services.engine import retry_ious

    before = balances(localnet, splits, world)
    retry_ious(claimed, gateway=gateway)
    after = balances(localnet, splits, world)
    paid = {role: after[role] - before[role] for role in after}
    assert paid == {**EXPECTED, LegRole.REFERRAL_1: 0}
    assert PayoutAttempt.objects.filter(distribution=distribution, status=AttemptStatus.LANDED).count() == 1
    assert_legs_add_up(distribution)
    assert (distribution.status, distribution.paid, distribution.owed) == (
        DistributionStatus.PAID, SHARE - 500_000, 0)


def test_every_split_payout_keeps_the_legs_adding_up(localnet, gateway, splits):
    world = splits["world"]()
    for pnl in (100_000_000, 6_000_000, 33_333_333):
        distribution = world.close(pnl).distribution
        process_distribution(distribution.pk, gateway=gateway)
        assert_legs_add_up(distribution)


def test_a_payout_never_pays_one_recipient_twice_nor_a_leg_of_nothing(gateway):
    agent, creator, other = Keypair(), wallet(), wallet()
    with pytest.raises(ValueError, match="more than one leg"):
        gateway.build_payout(agent, creator, 1_000, more_legs=[(other, 10), (creator, 5)])
    with pytest.raises(ValueError, match="amount"):
        gateway.build_payout(agent, creator, 1_000, more_legs=[(other, 0)])
    payout = gateway.build_payout(agent, creator, 1_000, more_legs=[(other, 10)])
    assert payout.amount == 1_010 and payout.legs == ((creator, 1_000), (other, 10))
    assert payout.roles.count("transfer") == 2


def test_every_legs_debt_blocks_the_subscribers_exit_like_the_creators(localnet, gateway, splits):
    """Every leg is owed for lack of SOL: the guard counts all five IOUs; the retry it makes
    first pays them together (the first IOU's payout pays every leg) and the exit opens."""
    from profitshare.services.engine import retry_iou_now
    from profitshare.services.guards import guard

    world = splits["world"](lamports=1_000_000)
    distribution = world.close(100_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    sub_id = world.subscription.subscription_id
    answer = guard(sub_id)
    assert (answer.can_withdraw, answer.owed) == (False, SHARE)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    answer = guard(sub_id, retry=lambda iou_id: retry_iou_now(iou_id, actor="guard", gateway=gateway))
    assert (answer.can_withdraw, answer.owed) == (True, 0)
    assert_legs_add_up(distribution)
    assert distribution.status == DistributionStatus.PAID


def test_token_accounts_that_cannot_be_read_owe_every_leg_and_nothing_moves(localnet, gateway, splits):
    world = splits["world"]()
    before = balances(localnet, splits, world)
    distribution = world.close(100_000_000).distribution
    localnet.rpc("localnet_setFaults", {"httpErrorRate": 1.0, "httpErrorMethods": ["getMultipleAccounts"]})
    try:
        process_distribution(distribution.pk, gateway=gateway)
    finally:
        localnet.rpc("localnet_setFaults", {})
    ious = IOU.objects.filter(distribution=distribution).select_related("leg")
    assert {iou.leg.role: (iou.amount, iou.reason) for iou in ious} == {
        role: (amount, IouReason.RPC_UNAVAILABLE) for role, amount in EXPECTED.items()}
    assert all(iou.last_error.startswith("token accounts:") for iou in ious)
    assert balances(localnet, splits, world) == before
    assert not PayoutAttempt.objects.filter(distribution=distribution).exists()
    assert not LegCarry.objects.filter(subscription=world.subscription).exists()  # nothing carried blind
