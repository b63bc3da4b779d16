"""The payout pipeline on PostgreSQL and the real local node: balances moved, rows written."""

from __future__ import annotations

import pytest

from profitshare.models import (
    IOU,
    Alert,
    AttemptStatus,
    AuditEvent,
    Distribution,
    DistributionStatus,
    DriftAction,
    IouReason,
    IouStatus,
    PayoutAttempt,
)
from profitshare.services.engine import process_distribution
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
ATA_RENT = 2_039_280
FEE = 5_000


def assert_balanced(distribution: Distribution) -> None:
    distribution.refresh_from_db()
    d = distribution
    assert d.paid + d.owed + d.carried + d.voided == d.share + d.carry_in


def test_profitable_close_pays_the_creator_in_usdc(localnet, gateway):
    world = make_world(localnet)
    lamports_before = world.agent_lamports()
    result = world.close(123_456_789)  # +123.456789 USDC at 10 %
    distribution = result.distribution
    assert distribution.share == 12_345_678  # floor(12,345,678.9)
    process_distribution(distribution.pk, gateway=gateway)
    distribution.refresh_from_db()
    assert distribution.status == DistributionStatus.PAID
    assert (distribution.paid, distribution.owed, distribution.withdrawn) == (12_345_678, 0, 0)
    assert world.creator_usdc() == 12_345_678
    assert world.agent_usdc() == 0  # withdrew exactly the share, paid it all
    drift = world.drift()
    assert drift["settledPnl"] == 123_456_789 and drift["unsettledPnl"] == 0
    # Drift's scaled balances round the remainder of a withdraw down by one base unit
    assert drift["collateral"] == 1_000_000_000 + 123_456_789 - 12_345_678 - 1
    attempt = PayoutAttempt.objects.get(distribution=distribution)
    assert attempt.status == AttemptStatus.LANDED and attempt.amount == 12_345_678
    assert (attempt.path, attempt.settles, attempt.withdraw_amount) == ("atomic", True, 12_345_678)
    assert attempt.slot is not None
    assert not DriftAction.objects.exists()  # settle and withdraw happened inside the payout
    landed = localnet.rpc("getTransaction", attempt.signature, {"encoding": "json"})
    assert landed["meta"]["err"] is None and landed["meta"]["fee"] == FEE
    # one transaction, one signature: its fee, the agent's own ATA rent and the creator's
    assert lamports_before - world.agent_lamports() == FEE + 2 * ATA_RENT
    trail = list(AuditEvent.objects.filter(entity="distribution", entity_id=str(distribution.pk)).values_list("to_status", flat=True))
    assert trail[0] == "pending" and "processing" in trail and trail[-1] == "paid"
    assert_balanced(distribution)


def test_a_loss_owes_nothing_and_moves_nothing(localnet, gateway):
    world = make_world(localnet)
    result = world.close(-50_000_000)
    assert result.distribution is None
    assert not Distribution.objects.exists()
    assert world.creator_usdc() == 0


def test_running_twice_pays_once(localnet, gateway):
    world = make_world(localnet)
    distribution = world.close(10_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    process_distribution(distribution.pk, gateway=gateway)
    assert world.creator_usdc() == 1_000_000
    assert PayoutAttempt.objects.filter(distribution=distribution).count() == 1


def test_too_little_sol_is_an_iou_and_moves_no_usdc(localnet, gateway):
    world = make_world(localnet, lamports=1_000_000)  # < rent of the creator's ATA
    distribution = world.close(40_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    distribution.refresh_from_db()
    iou = IOU.objects.get(distribution=distribution)
    assert (iou.reason, iou.status, iou.amount) == (IouReason.INSUFFICIENT_SOL, IouStatus.OPEN, 4_000_000)
    assert distribution.status == DistributionStatus.OWED and distribution.owed == 4_000_000
    assert world.creator_usdc() == 0 and world.agent_usdc() == 0
    # the pre-flight comes before anything is sent: not even the settle went out
    assert world.drift()["collateral"] == 1_000_000_000 and world.drift()["unsettledPnl"] == 40_000_000
    assert not DriftAction.objects.exists() and not PayoutAttempt.objects.exists()
    assert "lamports" in iou.last_error
    assert Alert.objects.filter(kind="iou_created", amount=4_000_000).exists()
    assert_balanced(distribution)


def test_partial_withdraw_pays_what_arrived_and_owes_the_rest(localnet, gateway):
    world = make_world(localnet)
    distribution = world.close(50_000_000).distribution  # share 5,000,000
    localnet.rpc("localnet_setFaults", {"partialWithdrawRatio": 0.6})
    process_distribution(distribution.pk, gateway=gateway)
    distribution.refresh_from_db()
    assert world.creator_usdc() == 3_000_000
    assert (distribution.paid, distribution.owed, distribution.status) == (3_000_000, 2_000_000, "partially_paid")
    iou = IOU.objects.get(distribution=distribution)
    assert (iou.reason, iou.amount) == (IouReason.WITHDRAW_SHORT, 2_000_000)
    assert_balanced(distribution)


def test_settle_failure_is_an_iou_for_the_whole_share(localnet, gateway):
    world = make_world(localnet)
    pool = localnet.rpc("localnet_driftConfigure", {})["pnlPool"]
    try:
        localnet.rpc("localnet_driftConfigure", {"pnlPool": 0})
        distribution = world.close(20_000_000).distribution
        process_distribution(distribution.pk, gateway=gateway)
    finally:
        localnet.rpc("localnet_driftConfigure", {"pnlPool": pool})
    iou = IOU.objects.get(distribution=distribution)
    assert (iou.reason, iou.amount) == (IouReason.SETTLE_FAILED, 2_000_000)
    assert "PnlPoolCantSettleUser" in iou.last_error
    assert world.creator_usdc() == 0


def test_invalid_creator_wallet_is_an_iou_and_an_alert(localnet, gateway):
    world = make_world(localnet)
    creator = world.subscription.bot.creator
    creator.address = "not-a-wallet-0OIl"
    creator.save()
    distribution = world.close(30_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    iou = IOU.objects.get(distribution=distribution)
    assert (iou.reason, iou.amount) == (IouReason.INVALID_CREATOR_WALLET, 3_000_000)
    assert Alert.objects.filter(kind="invalid_creator_wallet").exists()
    assert world.drift()["unsettledPnl"] == 30_000_000  # nothing touched on chain


def test_dust_is_carried_then_paid_once_it_crosses_the_threshold(localnet, gateway, settings):
    world = make_world(localnet)
    first = world.close(300_000).distribution  # share 30,000 < 50,000 (creator ATA missing)
    process_distribution(first.pk, gateway=gateway)
    first.refresh_from_db()
    world.subscription.refresh_from_db()
    assert (first.status, first.carried, first.owed) == ("carried", 30_000, 0)
    assert world.subscription.dust_carry == 30_000
    assert world.creator_usdc() == 0
    second = world.close(250_000).distribution  # 25,000 + 30,000 carried = 55,000 >= 50,000
    process_distribution(second.pk, gateway=gateway)
    second.refresh_from_db()
    world.subscription.refresh_from_db()
    assert (second.carry_in, second.paid, second.status) == (30_000, 55_000, "paid")
    assert world.subscription.dust_carry == 0
    assert world.creator_usdc() == 55_000
    assert_balanced(first)
    assert_balanced(second)


def test_lost_response_after_landing_is_paid_once(localnet, gateway):
    world = make_world(localnet)
    distribution = world.close(70_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)  # settle + withdraw + pay once: baseline
    second = world.close(10_000_000).distribution
    localnet.rpc("localnet_setFaults", {"loseResponseRate": 1.0})
    process_distribution(second.pk, gateway=gateway)
    localnet.rpc("localnet_setFaults", {})
    second.refresh_from_db()
    assert second.status == DistributionStatus.PAID
    assert world.creator_usdc() == 7_000_000 + 1_000_000
    assert PayoutAttempt.objects.filter(distribution=second).count() == 1


def test_dropped_payout_expires_then_is_safely_re_signed(localnet, gateway):
    world = make_world(localnet)
    distribution = world.close(20_000_000).distribution
    # every token transfer is "accepted" and none lands: the one-transaction payout with it
    localnet.rpc("localnet_setFaults", {"dropRate": 1.0, "dropPrograms": [TOKEN_PROGRAM]})
    process_distribution(distribution.pk, gateway=gateway)
    distribution.refresh_from_db()
    assert distribution.status == DistributionStatus.PROCESSING  # unknown outcome: not reset
    attempt = PayoutAttempt.objects.get(distribution=distribution)
    assert (attempt.status, attempt.path) == (AttemptStatus.SENT, "atomic")
    assert (distribution.withdrawn, distribution.settled) == (0, False)  # nothing happened without it
    assert world.drift()["unsettledPnl"] == 20_000_000
    localnet.rpc("localnet_setFaults", {})
    localnet.rpc("localnet_advanceSlots", 151)  # the first signature can never land now
    process_distribution(distribution.pk, gateway=gateway)
    distribution.refresh_from_db()
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.EXPIRED
    assert distribution.status == DistributionStatus.PAID
    assert world.creator_usdc() == 2_000_000
    assert world.drift()["collateral"] == 1_000_000_000 + 20_000_000 - 2_000_000 - 1  # withdrawn once (Drift rounds down)
    statuses = list(PayoutAttempt.objects.filter(distribution=distribution).order_by("id").values_list("status", flat=True))
    assert statuses == ["expired", "landed"]


def test_worker_killed_between_send_and_record_is_resolved_by_signature(localnet, gateway):
    """The attempt is recorded and sent, the worker dies before it learns the outcome (here: the
    node drops the send, so the worker sees nothing land), and later the very same signed bytes
    land (a validator had them after all). The next run asks the chain: landed means paid, once."""
    world = make_world(localnet)
    distribution = world.close(30_000_000).distribution
    localnet.rpc("localnet_setFaults", {"dropRate": 1.0, "dropPrograms": [TOKEN_PROGRAM]})
    process_distribution(distribution.pk, gateway=gateway)
    localnet.rpc("localnet_setFaults", {})
    attempt = PayoutAttempt.objects.get(distribution=distribution)
    assert attempt.status == AttemptStatus.SENT
    import base64

    localnet.rpc("sendTransaction", base64.b64encode(bytes(attempt.raw_transaction)).decode(), {"encoding": "base64"})
    assert world.creator_usdc() == 3_000_000  # it landed on chain; the database does not know yet
    process_distribution(distribution.pk, gateway=gateway)
    distribution.refresh_from_db()
    attempt.refresh_from_db()
    assert distribution.status == DistributionStatus.PAID and distribution.paid == 3_000_000
    assert attempt.status == AttemptStatus.LANDED
    assert world.creator_usdc() == 3_000_000  # not paid twice
    assert PayoutAttempt.objects.filter(distribution=distribution).count() == 1


def test_a_close_whose_pnl_an_earlier_settle_took_is_paid_without_settling_again(localnet, gateway):
    """Drift settles a position's whole unsettled PnL: the first close's settle also settles the
    second's, and Drift refuses the second settle (``UserHasNoPositionInMarket``). That refusal
    means "already settled": the second share is withdrawn and paid, not owed."""
    world = make_world(localnet)
    first = world.close(10_000_000).distribution
    second = world.close(30_000_000).distribution
    process_distribution(first.pk, gateway=gateway)
    assert world.drift()["unsettledPnl"] == 0  # both closes' PnL settled by the first settle
    process_distribution(second.pk, gateway=gateway)
    second.refresh_from_db()
    assert (second.status, second.paid, second.owed) == (DistributionStatus.PAID, 3_000_000, 0)
    assert world.creator_usdc() == 4_000_000
    assert not IOU.objects.exists()
    reasons = list(AuditEvent.objects.filter(entity="distribution", entity_id=str(second.pk)).values_list("reason", flat=True))
    assert "PnL already settled (Drift: UserHasNoPositionInMarket)" in reasons
    assert_balanced(second)
