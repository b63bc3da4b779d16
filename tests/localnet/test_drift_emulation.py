"""The emulated Drift program: settle PnL and withdraw, authorized, moving real USDC."""

from __future__ import annotations

import pytest
from solana.rpc.api import Client
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders.keypair import Keypair
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
)

from profitshare.chain.drift import program
from tests.localnet.helpers import USDC, drift_transaction, funded_wallet


def account(localnet, authority, sub=0):
    return localnet.rpc("localnet_driftAccount", str(authority.pubkey()), sub)


def usdc(client, owner) -> int:
    ata = get_associated_token_address(owner, USDC)
    info = client.get_account_info(ata).value
    return 0 if info is None else int(client.get_token_account_balance(ata).value.amount)


def settle(client, agent, sub=0, signer=None, skip_preflight=False):
    signer = signer or agent
    ix = program.build_settle_pnl_ix(agent.pubkey(), sub, perp_market_index=0)
    ix_signer = program.build_settle_pnl_ix(signer.pubkey(), sub, 0) if signer is not agent else ix
    if signer is not agent:  # a settle naming the real user but signed by someone else
        from solders.instruction import AccountMeta, Instruction

        metas = list(ix.accounts)
        metas[2] = AccountMeta(signer.pubkey(), True, False)
        ix = Instruction(ix.program_id, ix.data, metas)
        del ix_signer
    return client.send_transaction(
        drift_transaction(client, signer, [ix]), opts=TxOpts(skip_preflight=skip_preflight)
    ).value


def withdraw(client, agent, amount, sub=0, reduce_only=True, create_ata=True, skip_preflight=False):
    ata = get_associated_token_address(agent.pubkey(), USDC)
    instructions = [program.build_withdraw_ix(agent.pubkey(), sub, 0, amount, reduce_only, ata)]
    if create_ata:
        instructions.insert(0, create_idempotent_associated_token_account(agent.pubkey(), agent.pubkey(), USDC))
    return client.send_transaction(
        drift_transaction(client, agent, instructions), opts=TxOpts(skip_preflight=skip_preflight)
    ).value


def test_deposit_realize_settle_withdraw_moves_real_tokens(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 100_000_000)
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 25_000_000)
    state = account(localnet, agent)
    assert state["collateral"] == 100_000_000 and state["unsettledPnl"] == 25_000_000
    assert state["withdrawable"] == 100_000_000
    assert state["user"] == str(program.user_pda(agent.pubkey(), 0))
    lamports = client.get_balance(agent.pubkey()).value
    signature = settle(client, agent)
    assert client.get_signature_statuses([signature]).value[0].err is None
    state = account(localnet, agent)
    assert (state["collateral"], state["unsettledPnl"], state["settledPnl"]) == (125_000_000, 0, 25_000_000)
    assert client.get_balance(agent.pubkey()).value == lamports - 5_000
    vault_before = int(client.get_token_account_balance(program.spot_market_vault_pda(0)).value.amount)
    withdraw(client, agent, 2_500_000)
    assert usdc(client, agent.pubkey()) == 2_500_000
    assert account(localnet, agent)["collateral"] == 122_500_000
    vault_after = int(client.get_token_account_balance(program.spot_market_vault_pda(0)).value.amount)
    assert vault_before - vault_after == 2_500_000
    # the ATA was created in the withdraw transaction: rent + fee paid by the agent
    assert client.get_balance(agent.pubkey()).value == lamports - 5_000 - 5_000 - 2_039_280


def test_losses_settle_out_of_collateral_and_limit_withdrawable(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 3, 10_000_000)
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 3, -4_000_000)
    assert account(localnet, agent, 3)["withdrawable"] == 6_000_000
    settle(client, agent, sub=3)
    state = account(localnet, agent, 3)
    assert (state["collateral"], state["settledPnl"], state["withdrawable"]) == (6_000_000, -4_000_000, 6_000_000)


def test_reduce_only_withdraw_clamps_to_withdrawable(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 7_000_000)
    withdraw(client, agent, 9_000_000, reduce_only=True)
    assert usdc(client, agent.pubkey()) == 7_000_000
    assert account(localnet, agent)["collateral"] == 0


def test_withdraw_beyond_collateral_fails_with_insufficient_collateral(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 1_000_000)
    with pytest.raises(RPCException, match=hex(program.error_code("InsufficientCollateral"))):
        withdraw(client, agent, 1_000_001, reduce_only=False)
    signature = withdraw(client, agent, 1_000_001, reduce_only=False, skip_preflight=True)
    landed = localnet.rpc("getTransaction", str(signature), {"encoding": "json"})
    code = program.error_code("InsufficientCollateral")
    assert landed["meta"]["err"] == {"InstructionError": [1, {"Custom": code}]}
    assert account(localnet, agent)["collateral"] == 1_000_000
    assert client.get_account_info(get_associated_token_address(agent.pubkey(), USDC)).value is None


def test_unsettled_profit_is_not_withdrawable(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 5_000_000)
    with pytest.raises(RPCException, match=hex(program.error_code("InsufficientCollateral"))):
        withdraw(client, agent, 1)


def test_settle_fails_when_the_pnl_pool_cannot_pay(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    config = localnet.rpc("localnet_driftConfigure", {})
    try:
        localnet.rpc("localnet_driftConfigure", {"pnlPool": 1_000})
        localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 1_001)
        with pytest.raises(RPCException, match=hex(program.error_code("PnlPoolCantSettleUser"))):
            settle(client, agent)
        assert account(localnet, agent)["unsettledPnl"] == 1_001
    finally:
        localnet.rpc("localnet_driftConfigure", {"pnlPool": config["pnlPool"]})


def test_daily_withdraw_limit(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 50_000_000)
    try:
        localnet.rpc("localnet_driftConfigure", {"dailyWithdrawLimit": 10_000_000})
        withdraw(client, agent, 6_000_000)
        localnet.rpc("localnet_advanceSlots", 1)  # a new blockhash: the same request is new bytes
        with pytest.raises(RPCException, match=hex(program.error_code("DailyWithdrawLimit"))):
            withdraw(client, agent, 6_000_000)
        withdraw(client, agent, 4_000_000)
        assert usdc(client, agent.pubkey()) == 10_000_000
    finally:
        localnet.rpc("localnet_driftConfigure", {"dailyWithdrawLimit": None})


def test_only_the_authority_may_withdraw_and_only_it_or_its_delegate_settle(localnet):
    client = Client(localnet.url)
    agent, thief, delegate = (funded_wallet(localnet) for _ in range(3))
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 5_000_000)
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 1_000)
    # a withdraw instruction naming the agent's user but the thief as authority and token account
    thief_ata = get_associated_token_address(thief.pubkey(), USDC)
    ix = program.build_withdraw_ix(thief.pubkey(), 0, 0, 1_000_000, True, thief_ata)
    from solders.instruction import AccountMeta, Instruction

    metas = list(ix.accounts)
    metas[1] = AccountMeta(program.user_pda(agent.pubkey(), 0), False, True)
    forged = Instruction(ix.program_id, ix.data, metas)
    create = create_idempotent_associated_token_account(thief.pubkey(), thief.pubkey(), USDC)
    with pytest.raises(RPCException, match=hex(2002)):
        client.send_transaction(drift_transaction(client, thief, [create, forged]))
    with pytest.raises(RPCException, match=hex(2002)):
        settle(client, agent, signer=thief)
    localnet.rpc("localnet_driftSetDelegate", str(agent.pubkey()), 0, str(delegate.pubkey()))
    settle(client, agent, signer=delegate)
    state = account(localnet, agent)
    assert state["collateral"] == 5_001_000 and state["delegate"] == str(delegate.pubkey())


def test_unsigned_drift_transaction_is_refused(localnet):
    import base64

    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 5_000_000)
    tx = drift_transaction(client, agent, [program.build_settle_pnl_ix(agent.pubkey(), 0, 0)])
    raw = bytearray(bytes(tx))
    raw[5] ^= 1
    with pytest.raises(RuntimeError, match="-32003"):
        localnet.rpc("sendTransaction", base64.b64encode(bytes(raw)).decode(), {"encoding": "base64"})


def test_drift_on_a_missing_user_account_fails(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    with pytest.raises(RPCException, match=hex(3012)):
        settle(client, agent, sub=9)


def test_transfer_out_behind_our_back_is_on_chain(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    elsewhere = Keypair().pubkey()
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 8_000_000)
    moved = localnet.rpc("localnet_driftTransferOut", str(agent.pubkey()), 0, 3_000_000, str(elsewhere))
    assert moved["account"]["collateral"] == 5_000_000
    assert usdc(client, elsewhere) == 3_000_000
    user = program.user_pda(agent.pubkey(), 0)
    history = client.get_signatures_for_address(user).value
    assert str(history[0].signature) == moved["signature"]
    landed = localnet.rpc("getTransaction", moved["signature"], {"encoding": "json"})
    post = [b for b in landed["meta"]["postTokenBalances"] if b["owner"] == str(elsewhere)]
    assert post[0]["uiTokenAmount"]["amount"] == "3000000"


def test_bad_world_building_params_change_nothing(localnet):
    agent = funded_wallet(localnet)
    for params in ([str(agent.pubkey()), -1, 5], [str(agent.pubkey()), 0, 0], [str(agent.pubkey()), 0, 2**64]):
        with pytest.raises(RuntimeError, match="-32602"):
            localnet.rpc("localnet_driftDeposit", *params)
    with pytest.raises(RuntimeError, match="-32602"):
        localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, "12")
    assert account(localnet, agent) is None
