"""Drift through the gateway on the local node (the real Drift v2.84.0 program, real USDC token
accounts).

What arrived is checked on the agent's SPL token account, never on Drift's figures (docs/design.md,
"Measure what arrived"). Drift's ``collateral`` here is the adapter's: USDC balance + unsettled
PnL; Drift's scaled balances round a remainder down by at most one base unit.
"""

from __future__ import annotations

import pytest
from solders.keypair import Keypair

from profitshare.chain.errors import (
    DriftSubaccountMissing,
    SettleFailed,
    WithdrawFailed,
)
from tests.chain.gateway_support import (
    ATA_RENT,
    FEE,
    ata_exists,
    confirm,
    funded_agent,
    make_gateway,
    send,
    settle_pnl,
    sol,
    usdc,
    withdraw,
)


def _subscriber(localnet, *, collateral: int, pnl: int = 0, usdc: int = 0, lamports: int = 10**9):
    agent = funded_agent(localnet, lamports=lamports, usdc=usdc)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, collateral)
    if pnl:
        localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, pnl)
    return agent


@pytest.fixture
def drift_config(localnet):
    """Change the node's PnL pools / Drift withdraw guard for one test, then restore them."""
    saved = localnet.rpc("localnet_driftConfigure", {})
    yield lambda **config: localnet.rpc("localnet_driftConfigure", config)
    localnet.rpc("localnet_driftConfigure", saved)


def test_settle_moves_unsettled_pnl_into_collateral(localnet):
    gateway = make_gateway(localnet)
    agent = _subscriber(localnet, collateral=10_000_000, pnl=2_500_000)
    before = gateway.drift_subaccount(agent.pubkey(), 0)
    assert (before.collateral, before.unsettled_pnl, before.settled_pnl) == (12_500_000, 2_500_000, 0)
    assert before.withdrawable == 10_000_000  # an unsettled profit is not withdrawable

    signature = settle_pnl(gateway, agent, 0, 0)

    assert gateway.signature_status(signature).state == "landed"
    after = gateway.drift_subaccount(agent.pubkey(), 0)
    assert (after.collateral, after.unsettled_pnl, after.settled_pnl) == (12_500_000, 0, 2_500_000)
    assert after.withdrawable == 12_500_000
    assert sol(localnet, agent.pubkey()) == 10**9 - FEE


def test_settle_failure_is_settle_failed_with_the_drift_error_name(localnet, drift_config):
    gateway = make_gateway(localnet)
    agent = _subscriber(localnet, collateral=1_000_000, pnl=5_000_000)
    drift_config(pnlPool=0)  # an empty pool cannot pay this profit (Drift settles what it can)
    with pytest.raises(SettleFailed) as caught:
        settle_pnl(gateway, agent, 0, 0)
    assert caught.value.reason == "PnlPoolCantSettleUser"
    assert caught.value.code == "settle_failed"
    assert caught.value.signature is None  # refused by preflight: no fee
    state = gateway.drift_subaccount(agent.pubkey(), 0)
    assert (state.collateral, state.unsettled_pnl) == (6_000_000, 5_000_000)
    assert sol(localnet, agent.pubkey()) == 10**9


def test_settle_of_a_missing_subaccount_fails_with_a_reason(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet)
    with pytest.raises(SettleFailed) as caught:
        settle_pnl(gateway, agent, 0, 0)
    assert caught.value.reason  # Anchor's AccountNotInitialized (3012): not in Drift's IDL
    with pytest.raises(DriftSubaccountMissing):
        gateway.drift_subaccount(agent.pubkey(), 0)


def test_withdraw_delivers_to_the_agent_token_account_creating_it(localnet):
    gateway = make_gateway(localnet)
    agent = _subscriber(localnet, collateral=8_000_000)  # no USDC ATA yet
    assert not ata_exists(localnet, agent.pubkey())

    result = withdraw(gateway, agent, 0, 3_000_000)

    assert (result.requested, result.delivered, result.shortfall) == (3_000_000, 3_000_000, 0)
    assert usdc(localnet, agent.pubkey()) == 3_000_000
    assert gateway.drift_subaccount(agent.pubkey(), 0).collateral == 4_999_999
    assert sol(localnet, agent.pubkey()) == 10**9 - FEE - ATA_RENT


def test_partial_withdraw_reports_what_the_token_account_received(localnet):
    gateway = make_gateway(localnet)
    agent = _subscriber(localnet, collateral=8_000_000, usdc=1_111)
    localnet.rpc("localnet_setFaults", {"partialWithdrawRatio": 0.4})

    result = withdraw(gateway, agent, 0, 2_000_001)

    assert result.requested == 2_000_001
    assert result.delivered == 800_000  # floor(2,000,001 × 0.4)
    assert result.shortfall == 1_200_001
    assert usdc(localnet, agent.pubkey()) == 1_111 + 800_000
    second = withdraw(gateway, agent, 0, 1_000_000)
    assert (second.requested, second.delivered, second.shortfall) == (1_000_000, 400_000, 600_000)
    assert gateway.signature_status(second.signature).state == "landed"
    assert usdc(localnet, agent.pubkey()) == 1_111 + 800_000 + 400_000


def test_an_unsettled_loss_is_margin_and_reduce_only_clamps_to_the_deposit(localnet):
    """Drift: while a loss is unsettled, a withdraw must leave it covered (plain or reduce-only:
    ``InsufficientCollateral``); once settled, reduce-only clamps the amount to the deposit."""
    gateway = make_gateway(localnet)
    agent = _subscriber(localnet, collateral=1_000_000, pnl=-300_000)  # unsettled loss
    assert gateway.drift_subaccount(agent.pubkey(), 0).withdrawable == 700_000

    for reduce_only in (False, True):
        with pytest.raises(WithdrawFailed) as caught:
            withdraw(gateway, agent, 0, 900_000, reduce_only=reduce_only)
        assert caught.value.reason == "InsufficientCollateral"
        assert caught.value.code == "withdraw_failed"
    assert usdc(localnet, agent.pubkey()) == 0

    settle_pnl(gateway, agent, 0, 0)
    result = withdraw(gateway, agent, 0, 900_000, reduce_only=True)
    assert (result.requested, result.delivered) == (900_000, 700_000)
    assert usdc(localnet, agent.pubkey()) == 700_000


def test_daily_withdraw_limit_is_withdraw_failed(localnet, drift_config):
    gateway = make_gateway(localnet)
    agent = _subscriber(localnet, collateral=5_000_000)
    drift_config(dailyWithdrawLimit=1_000_000)
    assert withdraw(gateway, agent, 0, 600_000).delivered == 600_000
    with pytest.raises(WithdrawFailed) as caught:
        withdraw(gateway, agent, 0, 600_000)
    assert caught.value.reason == "DailyWithdrawLimit"
    assert usdc(localnet, agent.pubkey()) == 600_000


def test_withdraw_with_a_lost_send_response_is_resolved_by_its_signature(localnet):
    gateway = make_gateway(localnet)
    agent = _subscriber(localnet, collateral=4_000_000, usdc=1)
    localnet.rpc("localnet_setFaults", {"loseResponseRate": 1.0})
    result = withdraw(gateway, agent, 0, 1_500_000)
    assert result.delivered == 1_500_000
    assert usdc(localnet, agent.pubkey()) == 1_500_001


def test_the_whole_money_path_settle_withdraw_pay(localnet):
    gateway = make_gateway(localnet, priority=10_000)
    agent = _subscriber(localnet, collateral=20_000_000, pnl=4_000_000)
    creator = Keypair().pubkey()
    settle_pnl(gateway, agent, 0, 0)
    share = 4_000_000 * 750 // 10_000  # 7.5 %
    assert sol(localnet, agent.pubkey()) >= gateway.payout_lamports_needed(include_withdraw=True, missing_token_accounts=2)
    withdrawn = withdraw(gateway, agent, 0, share)
    signed = gateway.build_payout(agent, creator, withdrawn.delivered, reference="qv:dist:path")
    send(gateway, signed)
    confirm(gateway, signed)
    assert usdc(localnet, creator) == share == 300_000
    assert usdc(localnet, agent.pubkey()) == 0
    assert gateway.read_payout(signed.signature).amount == share
    assert gateway.drift_subaccount(agent.pubkey(), 0).collateral == 24_000_000 - share - 1


def test_two_equal_withdraws_in_one_slot_are_two_transactions(localnet):
    gateway = make_gateway(localnet)
    agent = _subscriber(localnet, collateral=3_000_000, usdc=1)
    first = withdraw(gateway, agent, 0, 500_000)
    second = withdraw(gateway, agent, 0, 500_000)  # same amount, same blockhash (manual clock)
    assert first.signature != second.signature
    assert first.delivered == second.delivered == 500_000
    assert usdc(localnet, agent.pubkey()) == 1_000_001
    assert gateway.drift_subaccount(agent.pubkey(), 0).collateral == 1_999_999
