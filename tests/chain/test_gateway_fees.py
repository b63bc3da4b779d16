"""SOL pre-flight of a payout (docs/design.md, "SOL pre-flight"): the pure arithmetic, then what the node really charges."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair

from profitshare.chain.fees import (
    TxFeeBudget,
    payout_sol_needed,
    priority_fee_lamports,
    transaction_fee_lamports,
)
from tests.chain.gateway_support import (
    ATA_RENT,
    FEE,
    ata_exists,
    confirm,
    funded_agent,
    make_gateway,
    send,
    sol,
    usdc,
)


# --- pure -------------------------------------------------------------------------------------
def test_priority_fee_is_price_times_limit_in_micro_lamports_rounded_up():
    assert priority_fee_lamports(10_000, 60_000) == 600
    assert priority_fee_lamports(1, 1) == 1  # 1e-6 lamport rounds up to 1
    assert priority_fee_lamports(1, 1_000_000) == 1
    assert priority_fee_lamports(1, 1_000_001) == 2
    assert priority_fee_lamports(0, 1_400_000) == 0


def test_transaction_fee_is_base_fee_per_signature_plus_priority():
    assert transaction_fee_lamports(TxFeeBudget(60_000, 0)) == 5_000
    assert transaction_fee_lamports(TxFeeBudget(60_000, 10_000)) == 5_600
    assert transaction_fee_lamports(TxFeeBudget(200_000, 10_000, signatures=2)) == 12_000


def test_payout_needs_both_transactions_and_rent_per_missing_token_account():
    transfer = TxFeeBudget(60_000, 10_000)
    withdraw = TxFeeBudget(200_000, 10_000)
    assert payout_sol_needed([transfer], token_account_rent=ATA_RENT, missing_token_accounts=0) == 5_600
    assert payout_sol_needed([transfer], token_account_rent=ATA_RENT, missing_token_accounts=1) == 5_600 + 2_039_280
    assert payout_sol_needed(
        [transfer, withdraw], token_account_rent=ATA_RENT, missing_token_accounts=1
    ) == 5_600 + 7_000 + 2_039_280
    with pytest.raises(ValueError, match="at least one transaction"):
        payout_sol_needed([], token_account_rent=ATA_RENT, missing_token_accounts=0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "5"])
def test_fee_inputs_must_be_non_negative_ints(bad):
    with pytest.raises(ValueError):
        priority_fee_lamports(bad, 1)
    with pytest.raises(ValueError):
        TxFeeBudget(bad, 0)
    with pytest.raises(ValueError):
        payout_sol_needed([TxFeeBudget(1, 0)], token_account_rent=bad, missing_token_accounts=1)


# --- on the local node ------------------------------------------------------------------------
def test_rent_is_read_from_the_node(localnet):
    assert make_gateway(localnet).token_account_rent() == 2_039_280


def test_pre_flight_equals_what_the_node_charges_without_priority_fees(localnet):
    gateway = make_gateway(localnet, priority=0)
    agent = funded_agent(localnet, lamports=10**9, usdc=1_000_000)
    creator = Keypair().pubkey()

    needed_new = gateway.payout_lamports_needed(include_withdraw=False, missing_token_accounts=1)
    assert needed_new == FEE + ATA_RENT
    signed = gateway.build_payout(agent, creator, 1)
    send(gateway, signed)
    confirm(gateway, signed)
    assert 10**9 - sol(localnet, agent.pubkey()) == needed_new

    assert ata_exists(localnet, creator)
    needed_existing = gateway.payout_lamports_needed(include_withdraw=False, missing_token_accounts=0)
    assert needed_existing == FEE
    before = sol(localnet, agent.pubkey())
    signed = gateway.build_payout(agent, creator, 1)
    send(gateway, signed)
    confirm(gateway, signed)
    assert before - sol(localnet, agent.pubkey()) == needed_existing


def test_pre_flight_counts_priority_fees_the_local_node_does_not_charge(localnet):
    gateway = make_gateway(localnet, priority=10_000)
    agent = funded_agent(localnet, lamports=10**9, usdc=1_000_000)
    creator = Keypair().pubkey()
    needed = gateway.payout_lamports_needed(include_withdraw=True, missing_token_accounts=1)
    # transfer: 5,000 + ceil(10,000 × 60,000 / 1e6) = 5,600; withdraw: 5,000 + 10,000 × 120,000 / 1e6
    assert needed == 5_600 + 6_200 + ATA_RENT
    signed = gateway.build_payout(agent, creator, 1)
    send(gateway, signed)
    confirm(gateway, signed)
    charged = 10**9 - sol(localnet, agent.pubkey())
    assert charged == FEE + ATA_RENT  # LiteSVM charges no priority fee; a cluster would
    assert charged <= needed


def test_a_payout_the_agent_cannot_fund_is_refused_and_moves_nothing(localnet):
    """The engine's pre-flight owes such a payout before signing it (tests/engine); sent anyway,
    the node refuses it in preflight: no fee, no USDC moved, no account created."""
    from profitshare.chain.errors import TransactionFailed

    gateway = make_gateway(localnet, priority=0)
    creator = Keypair().pubkey()
    poor = funded_agent(localnet, lamports=FEE + ATA_RENT - 1, usdc=1_000_000)
    assert gateway.payout_lamports_needed(include_withdraw=False, missing_token_accounts=1) == FEE + ATA_RENT
    with pytest.raises(TransactionFailed):
        send(gateway, gateway.build_payout(poor, creator, 10))
    assert sol(localnet, poor.pubkey()) == FEE + ATA_RENT - 1
    rich_in_sol = funded_agent(localnet, lamports=10**9, usdc=999)
    with pytest.raises(TransactionFailed):
        send(gateway, gateway.build_payout(rich_in_sol, creator, 1_000))
    assert usdc(localnet, rich_in_sol.pubkey()) == 999
    assert not ata_exists(localnet, creator)
