"""The one-transaction payout on the real Drift program, and every way it falls back to the
step-by-step path (docs/design.md, "A payout is one transaction where it can be"): balances on
the local node, rows and audit events in PostgreSQL."""

from __future__ import annotations

import contextlib

import pytest
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID

from profitshare.chain.drift.program import DRIFT_PROGRAM_ID
from profitshare.models import (
    IOU,
    AttemptStatus,
    AuditEvent,
    Distribution,
    DistributionStatus,
    DriftAction,
    IouReason,
    PayoutAttempt,
)
from profitshare.services.engine import process_distribution, process_pending
from tests.chain.gateway_support import make_gateway
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)

FEE = 5_000
ATA_RENT = 2_039_280
COMPUTE_BUDGET = "ComputeBudget111111111111111111111111111111"
ATA_PROGRAM = str(ASSOCIATED_TOKEN_PROGRAM_ID)
TOKEN_PROGRAM = str(TOKEN_PROGRAM_ID)
MEMO_PROGRAM = str(MEMO_PROGRAM_ID)


@contextlib.contextmanager
def drift_config(localnet, **config):
    """Apply ``localnet_driftConfigure`` for the block, then put back what it changed."""
    before = localnet.rpc("localnet_driftConfigure", {})
    localnet.rpc("localnet_driftConfigure", config)
    try:
        yield
    finally:
        restore = {"pnlPools": before["pnlPools"]}
        if "dailyWithdrawLimit" in config:
            restore["dailyWithdrawLimit"] = before["dailyWithdrawLimit"]
        localnet.rpc("localnet_driftConfigure", restore)


def landed_with_programs(localnet, signature: str) -> tuple[dict, list[str]]:
    """The landed transaction (``getTransaction`` json) and the program of each instruction."""
    tx = localnet.rpc("getTransaction", signature, {"encoding": "json"})
    message = tx["transaction"]["message"]
    return tx, [message["accountKeys"][ix["programIdIndex"]] for ix in message["instructions"]]


def reasons(distribution: Distribution) -> list[str]:
    return list(AuditEvent.objects.filter(entity="distribution", entity_id=str(distribution.pk)).values_list("reason", flat=True))


def fallback_reason(distribution: Distribution) -> str:
    (why,) = [r for r in reasons(distribution) if r.startswith("step-by-step payout")]
    return why


def test_a_profitable_close_is_paid_by_one_transaction_of_the_agent(localnet, gateway):
    world = make_world(localnet)
    distribution = world.close(30_000_000).distribution  # share 3 USDC
    process_distribution(distribution.pk, gateway=gateway)
    (attempt,) = PayoutAttempt.objects.filter(distribution=distribution)
    assert (attempt.status, attempt.path, attempt.amount, attempt.withdraw_amount) == ("landed", "atomic", 3_000_000, 3_000_000)
    tx, programs = landed_with_programs(localnet, attempt.signature)
    message = tx["transaction"]["message"]
    assert len(tx["transaction"]["signatures"]) == 1 and message["accountKeys"][0] == str(world.agent.pubkey())
    # budget (no priority fee on the test gateway), Drift settle_pnl, the agent's ATA, Drift
    # withdraw, the creator's ATA, transfer, memo
    assert programs == [COMPUTE_BUDGET, str(DRIFT_PROGRAM_ID), ATA_PROGRAM, str(DRIFT_PROGRAM_ID),
                        ATA_PROGRAM, TOKEN_PROGRAM, MEMO_PROGRAM]
    assert tx["meta"]["fee"] == FEE
    assert world.creator_usdc() == 3_000_000 and world.agent_usdc() == 0
    assert world.drift()["unsettledPnl"] == 0
    distribution.refresh_from_db()
    assert (distribution.status, distribution.settled, distribution.withdrawn) == (DistributionStatus.PAID, True, 0)
    assert not DriftAction.objects.exists()


def test_a_second_payout_with_both_token_accounts_in_place_skips_their_creation(localnet, gateway):
    world = make_world(localnet)
    process_distribution(world.close(10_000_000).distribution.pk, gateway=gateway)
    second = world.close(20_000_000, market_index=1).distribution
    lamports = world.agent_lamports()
    process_distribution(second.pk, gateway=gateway)
    (attempt,) = PayoutAttempt.objects.filter(distribution=second)
    _, programs = landed_with_programs(localnet, attempt.signature)
    assert ATA_PROGRAM not in programs and programs.count(str(DRIFT_PROGRAM_ID)) == 2
    assert lamports - world.agent_lamports() == FEE  # one signature, no rent
    assert world.creator_usdc() == 3_000_000


def test_a_pnl_pool_that_cannot_settle_takes_the_step_by_step_path_and_owes_settle_failed(localnet, gateway):
    world = make_world(localnet)
    with drift_config(localnet, pnlPool=0):
        distribution = world.close(20_000_000).distribution
        process_distribution(distribution.pk, gateway=gateway)
    assert fallback_reason(distribution) == "step-by-step payout: atomic settle would fail: PnlPoolCantSettleUser"
    iou = IOU.objects.get(distribution=distribution)
    assert (iou.reason, iou.amount) == (IouReason.SETTLE_FAILED, 2_000_000)
    assert not PayoutAttempt.objects.exists()  # a simulation is not a record: nothing was sent for it
    assert world.creator_usdc() == 0


def test_too_little_collateral_pays_what_drift_delivers_and_owes_the_rest(localnet, gateway):
    """The pool settles only 1 USDC of a 20 USDC profit and the subscriber has no other
    collateral: the atomic transfer of 2 USDC cannot be funded, so the simulation fails at the
    transfer; step by step, Drift's reduce-only withdraw delivers what there is."""
    world = make_world(localnet, collateral=0)
    with drift_config(localnet, pnlPool=1_000_000):
        distribution = world.close(20_000_000).distribution  # share 2 USDC
        process_distribution(distribution.pk, gateway=gateway)
    assert fallback_reason(distribution).startswith("step-by-step payout: atomic transfer would fail")
    distribution.refresh_from_db()
    delivered = world.creator_usdc()
    assert 999_000 <= delivered <= 1_000_000  # Drift's scaled balances round down
    assert (distribution.paid, distribution.owed) == (delivered, 2_000_000 - delivered)
    assert IOU.objects.get(distribution=distribution).reason == IouReason.WITHDRAW_SHORT
    assert world.agent_usdc() == 0


def test_drifts_daily_withdraw_limit_takes_the_step_by_step_path_and_owes_withdraw_failed(localnet, gateway):
    world = make_world(localnet)
    with drift_config(localnet, dailyWithdrawLimit=0):
        distribution = world.close(30_000_000).distribution
        process_distribution(distribution.pk, gateway=gateway)
    assert fallback_reason(distribution) == "step-by-step payout: atomic withdraw would fail: DailyWithdrawLimit"
    iou = IOU.objects.get(distribution=distribution)
    assert iou.reason == IouReason.WITHDRAW_FAILED and "DailyWithdrawLimit" in iou.last_error
    distribution.refresh_from_db()
    assert distribution.settled  # the settle went out on its own and landed
    assert world.drift()["unsettledPnl"] == 0 and world.creator_usdc() == 0


def test_a_withdraw_that_would_deliver_less_is_found_by_the_simulation(localnet, gateway):
    world = make_world(localnet)
    distribution = world.close(50_000_000).distribution  # share 5 USDC
    localnet.rpc("localnet_setFaults", {"partialWithdrawRatio": 0.6})
    process_distribution(distribution.pk, gateway=gateway)
    localnet.rpc("localnet_setFaults", {})
    assert fallback_reason(distribution).startswith("step-by-step payout: atomic transfer would fail")
    assert world.creator_usdc() == 3_000_000
    assert IOU.objects.get(distribution=distribution).remaining == 2_000_000
    (attempt,) = PayoutAttempt.objects.filter(distribution=distribution)
    assert attempt.path == "transfer"


def test_other_usdc_in_the_agents_token_account_keeps_the_payout_step_by_step(localnet, gateway):
    world = make_world(localnet)
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), 700)
    distribution = world.close(10_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    assert fallback_reason(distribution) == (
        "step-by-step payout: atomic not used: the agent's token account holds 700 base units that are not this payout's"
    )
    assert world.creator_usdc() == 1_000_000 and world.agent_usdc() == 700  # never spent
    assert sorted(DriftAction.objects.values_list("kind", flat=True)) == ["settle", "withdraw"]
    assert PayoutAttempt.objects.get().path == "transfer"


def test_sol_for_the_one_transaction_is_enough(localnet, gateway):
    need = gateway.payout_lamports_needed(atomic=True, include_withdraw=True, missing_token_accounts=2)
    world = make_world(localnet, lamports=need)  # to the lamport
    distribution = world.close(10_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    distribution.refresh_from_db()
    assert distribution.status == DistributionStatus.PAID and world.creator_usdc() == 1_000_000


def test_a_fallback_needs_sol_for_all_its_transactions_before_it_sends_any(localnet, gateway):
    """Enough SOL for the one transaction, not for the three of the step-by-step path: when the
    atomic payout cannot be used, the fallback's pre-flight owes insufficient_sol before even its
    settle goes out."""
    atomic = gateway.payout_lamports_needed(atomic=True, include_withdraw=True, missing_token_accounts=2)
    steps = gateway.payout_lamports_needed(include_settle=True, include_withdraw=True, missing_token_accounts=2)
    assert steps == atomic + 2 * FEE  # three signatures instead of one (no priority fee here)
    world = make_world(localnet, lamports=atomic + FEE)
    with drift_config(localnet, dailyWithdrawLimit=0):
        distribution = world.close(10_000_000).distribution
        process_distribution(distribution.pk, gateway=gateway)
    iou = IOU.objects.get(distribution=distribution)
    assert iou.reason == IouReason.INSUFFICIENT_SOL and str(steps) in iou.last_error
    assert not DriftAction.objects.exists() and not PayoutAttempt.objects.exists()
    assert world.drift()["unsettledPnl"] == 10_000_000  # nothing sent


def test_one_batch_pays_atomically_and_step_by_step_side_by_side(localnet, gateway, settings):
    settings.QV_ENGINE_BATCH_SIZE = 8
    worlds = [make_world(localnet) for _ in range(4)]
    localnet.rpc("localnet_fundUsdc", str(worlds[3].agent.pubkey()), 1)  # this one goes step by step
    with drift_config(localnet, pnlPools={"2": 0}):
        dists = [w.close(10_000_000 * (n + 1), market_index=2 if n == 2 else 0).distribution for n, w in enumerate(worlds)]
        ran = process_pending(dists[0].pk, gateway=gateway)
    assert sorted(ran) == sorted(d.pk for d in dists)
    paths = {a.distribution_id: a.path for a in PayoutAttempt.objects.filter(status=AttemptStatus.LANDED)}
    assert paths == {dists[0].pk: "atomic", dists[1].pk: "atomic", dists[3].pk: "transfer"}
    assert [w.creator_usdc() for w in worlds] == [1_000_000, 2_000_000, 0, 4_000_000]
    assert IOU.objects.get().distribution_id == dists[2].pk


def test_drift_changing_between_the_simulation_and_the_send_is_a_failed_attempt_then_step_by_step(localnet, gateway):
    """Someone empties the PnL pool after the simulation passed: the recorded atomic attempt is
    refused at the send (nothing moved), and the same run goes on step by step, whose settle is
    refused too: the share is owed as settle_failed, and the attempt stays on record."""
    world = make_world(localnet)
    distribution = world.close(10_000_000).distribution
    before = localnet.rpc("localnet_driftConfigure", {})["pnlPools"]
    racing = make_gateway(localnet, confirm_timeout=2.0)
    simulate = racing.simulate_many

    def simulate_then_drain(*args, **kwargs):
        answers = simulate(*args, **kwargs)
        localnet.rpc("localnet_driftConfigure", {"pnlPool": 0})  # another party, between the two
        return answers

    racing.simulate_many = simulate_then_drain
    try:
        process_distribution(distribution.pk, gateway=racing)
    finally:
        localnet.rpc("localnet_driftConfigure", {"pnlPools": before})
    (attempt,) = PayoutAttempt.objects.filter(distribution=distribution)
    assert (attempt.path, attempt.status) == ("atomic", AttemptStatus.FAILED)
    assert "PnlPoolCantSettleUser" in attempt.error
    assert fallback_reason(distribution) == "step-by-step payout: atomic transaction did not land"
    iou = IOU.objects.get(distribution=distribution)
    assert iou.reason == IouReason.SETTLE_FAILED
    assert world.creator_usdc() == 0 and world.drift()["unsettledPnl"] == 10_000_000


def test_a_subaccount_drift_does_not_know_cannot_be_built_and_is_owed_step_by_step(localnet, gateway):
    world = make_world(localnet, collateral=0)  # no Drift user account at all
    distribution = world.close(10_000_000, realize=False).distribution
    process_distribution(distribution.pk, gateway=gateway)
    assert fallback_reason(distribution).startswith("step-by-step payout: atomic not built: ")
    iou = IOU.objects.get(distribution=distribution)
    assert iou.reason == IouReason.SETTLE_FAILED and "AccountNotFound" in iou.last_error
    assert not PayoutAttempt.objects.exists() and world.creator_usdc() == 0


def test_one_unknown_subaccount_does_not_fail_the_rest_of_the_batch(localnet, gateway, settings):
    settings.QV_ENGINE_BATCH_SIZE = 8
    good, unknown = make_world(localnet), make_world(localnet, collateral=0)
    localnet.rpc("localnet_fundUsdc", str(good.agent.pubkey()), 1)  # step by step: settles beside the other
    paid = good.close(10_000_000).distribution
    missing = unknown.close(10_000_000, realize=False).distribution
    process_pending(paid.pk, gateway=gateway)
    paid.refresh_from_db()
    assert paid.status == DistributionStatus.PAID and good.creator_usdc() == 1_000_000
    assert IOU.objects.get(distribution=missing).reason == IouReason.SETTLE_FAILED


def test_no_answer_to_the_simulation_takes_the_step_by_step_path(localnet, gateway):
    from profitshare.chain.errors import RpcUnavailable

    world = make_world(localnet)
    distribution = world.close(10_000_000).distribution
    silent = make_gateway(localnet, confirm_timeout=2.0)

    def no_answer(*args, **kwargs):
        raise RpcUnavailable("simulateTransaction", [(localnet.url, "HTTP 503")])

    silent.simulate_many = no_answer  # the provider rate-limits simulations; the rest answers
    process_distribution(distribution.pk, gateway=silent)
    assert fallback_reason(distribution).startswith("step-by-step payout: atomic not simulated: ")
    distribution.refresh_from_db()
    assert distribution.status == DistributionStatus.PAID and world.creator_usdc() == 1_000_000
    assert PayoutAttempt.objects.get().path == "transfer"
