"""The real Drift v2 program on the local node: settle PnL and withdraw, authorized, moving real
USDC, with Drift's own errors, logs and events; the node's world building keeps Drift's sums."""

from __future__ import annotations

import base64

import pytest
from anchorpy import Context
from driftpy.constants.numeric_constants import BASE_PRECISION
from driftpy.types import MarketType, OrderParams, OrderType, PositionDirection
from solana.rpc.api import Client
from solana.rpc.core import RPCException
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from spl.token.instructions import get_associated_token_address

from profitshare.chain.drift.driftpy_adapter import DriftpyAdapter
from profitshare.localnet import drift_program as dp
from profitshare.localnet.node import LocalNode
from tests.chain.gateway_support import make_pool
from tests.localnet.helpers import USDC, drift_transaction, funded_wallet

PNL_POOL_CANT_SETTLE_USER = 6260
INSUFFICIENT_COLLATERAL = 6003
DAILY_WITHDRAW_LIMIT = 6128
USER_NOT_FOUND = 3012  # Anchor: AccountNotInitialized


def account(localnet, authority, sub=0):
    return localnet.rpc("localnet_driftAccount", str(authority.pubkey()), sub)


def usdc(client, owner) -> int:
    ata = get_associated_token_address(owner, USDC)
    info = client.get_account_info(ata).value
    return 0 if info is None else int(client.get_token_account_balance(ata).value.amount)


@pytest.fixture
def adapter(localnet):
    """The product's Drift adapter on the node: instructions as the engine builds them."""
    return DriftpyAdapter(make_pool(localnet.url))


def settle(client, adapter, agent, sub=0, signer=None, market=0):
    """Send the adapter's settle for ``agent``'s subaccount, signed by ``signer`` (the agent)."""
    signer = signer or agent
    (ix,) = adapter.build_settle_pnl_instructions(agent, sub, market)
    if signer is not agent:  # the same settle, with another wallet in the authority's place
        metas = list(ix.accounts)
        metas[2] = AccountMeta(signer.pubkey(), True, False)
        ix = Instruction(ix.program_id, ix.data, metas)
    return client.send_transaction(drift_transaction(client, signer, [ix])).value


def withdraw(client, adapter, agent, amount, sub=0, reduce_only=True):
    ata = get_associated_token_address(agent.pubkey(), USDC)
    instructions = adapter.build_withdraw_instructions(agent, sub, 0, amount, reduce_only, user_token_account=ata)
    return client.send_transaction(drift_transaction(client, agent, instructions)).value


def logs(localnet, signature) -> list[str]:
    tx = localnet.rpc("getTransaction", str(signature), {"encoding": "json", "maxSupportedTransactionVersion": 0})
    return tx["meta"]["logMessages"]


def test_the_node_runs_the_vendored_drift_binary(localnet):
    info = localnet.rpc("localnet_info")
    assert info["driftProgram"] == str(dp.DRIFT_PROGRAM_ID) and info["driftVersion"] == "2.84.0"
    assert [m["index"] for m in info["perpMarkets"]] == [0, 1, 2]
    program = Client(localnet.url).get_account_info(dp.DRIFT_PROGRAM_ID).value
    assert program is not None and program.executable


def test_a_binary_with_another_sha256_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "drift.so"
    data = bytearray(dp.DRIFT_SO.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(dp, "DRIFT_SO", bad)
    dp.program_bytes.cache_clear()
    try:
        with pytest.raises(dp.DriftBinaryMismatch, match="sha256"):
            LocalNode(slot_ms=0)
    finally:
        dp.program_bytes.cache_clear()


def test_deposit_realize_settle_withdraw_moves_real_tokens(localnet, adapter):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    deposited = localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 100_000_000)
    assert "Instruction: Deposit" in " ".join(logs(localnet, deposited["signature"]))
    assert usdc(client, agent.pubkey()) == 0  # the deposit did not touch the agent's own ATA
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 25_000_000)
    state = account(localnet, agent)
    assert (state["collateral"], state["unsettledPnl"], state["withdrawable"]) == (100_000_000, 25_000_000, 100_000_000)
    signature = settle(client, adapter, agent)
    settled = logs(localnet, signature)
    assert "Program log: Instruction: SettlePnl" in settled
    assert any(line.startswith("Program data: ") for line in settled)  # Drift's SettlePnlRecord event
    state = account(localnet, agent)
    assert (state["collateral"], state["unsettledPnl"], state["settledPnl"]) == (125_000_000, 0, 25_000_000)
    withdraw(client, adapter, agent, 30_000_000)
    assert usdc(client, agent.pubkey()) == 30_000_000
    assert account(localnet, agent)["collateral"] == 94_999_999  # Drift's scaled balances round down


def test_a_loss_settles_out_of_the_deposit_into_the_pnl_pool(localnet, adapter):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 10_000_000)
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, -4_000_000)
    assert account(localnet, agent)["withdrawable"] == 6_000_000
    pool = localnet.rpc("localnet_driftConfigure", {})["pnlPool"]
    settle(client, adapter, agent)
    assert account(localnet, agent)["collateral"] == 6_000_000
    # the settled loss goes to the market's PnL pool; Drift puts 1 % of it in the AMM's fee pool
    # while that pool is below its target (it is once trades have paid fees)
    assert localnet.rpc("localnet_driftConfigure", {})["pnlPool"] - pool in (4_000_000, 3_960_000)


def test_reduce_only_withdraw_clamps_to_the_deposit_and_rounds_as_drift(localnet, adapter):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 1_000_000_000)
    withdraw(client, adapter, agent, 100_000_000)
    assert account(localnet, agent)["collateral"] == 899_999_999  # Drift's scaled balances round down
    withdraw(client, adapter, agent, 10**12)
    assert usdc(client, agent.pubkey()) == 999_999_999


def test_withdraw_beyond_the_deposit_without_reduce_only_is_insufficient_collateral(localnet, adapter):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 5_000_000)
    with pytest.raises(RPCException, match=hex(INSUFFICIENT_COLLATERAL)):
        withdraw(client, adapter, agent, 50_000_000, reduce_only=False)
    assert account(localnet, agent)["collateral"] == 5_000_000


def test_an_unsettled_profit_is_not_withdrawable(localnet, adapter):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 5_000_000)
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 9_000_000)
    withdraw(client, adapter, agent, 14_000_000)
    assert usdc(client, agent.pubkey()) == 5_000_000


def test_an_empty_pnl_pool_cannot_settle_a_profit(localnet, adapter):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 5_000_000)
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 2_000_000)
    config = localnet.rpc("localnet_driftConfigure", {"pnlPool": 0})
    try:
        with pytest.raises(RPCException, match=hex(PNL_POOL_CANT_SETTLE_USER)):
            settle(client, adapter, agent)
    finally:
        localnet.rpc("localnet_driftConfigure", {"pnlPool": 1_000_000_000_000})
    assert config["pnlPools"] == {"0": 0, "1": 0, "2": 0}
    settle(client, adapter, agent)
    assert account(localnet, agent)["collateral"] == 7_000_000


def test_daily_withdraw_limit_is_drifts_withdraw_guard(localnet, adapter):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 50_000_000)
    localnet.rpc("localnet_driftConfigure", {"dailyWithdrawLimit": 10_000_000})
    try:
        withdraw(client, adapter, agent, 6_000_000)
        with pytest.raises(RPCException, match=hex(DAILY_WITHDRAW_LIMIT)):
            withdraw(client, adapter, agent, 6_000_000)
    finally:
        localnet.rpc("localnet_driftConfigure", {"dailyWithdrawLimit": None})
    withdraw(client, adapter, agent, 6_000_000)
    assert usdc(client, agent.pubkey()) == 12_000_000


def test_only_the_authority_withdraws_and_anyone_may_settle_into_the_users_own_account(localnet, adapter):
    """Drift: a withdraw needs the authority (``has_one = authority``); settling PnL while the
    pool is in excess is permissionless (it only moves PnL within the user's own account)."""
    client = Client(localnet.url)
    agent, thief, delegate = (funded_wallet(localnet) for _ in range(3))
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 5_000_000)
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 1_000)
    ata = get_associated_token_address(agent.pubkey(), USDC)
    (ix,) = adapter.build_withdraw_instructions(agent, 0, 0, 1_000_000, True, user_token_account=ata)[-1:]
    metas = list(ix.accounts)
    authority_index = next(n for n, m in enumerate(metas) if m.pubkey == agent.pubkey())
    metas[authority_index] = AccountMeta(thief.pubkey(), True, False)
    with pytest.raises(RPCException, match="Instruction: Withdraw"):
        client.send_transaction(drift_transaction(client, thief, [Instruction(ix.program_id, ix.data, metas)]))
    assert account(localnet, agent)["collateral"] == 5_000_000
    settle(client, adapter, agent, signer=thief)
    assert account(localnet, agent)["collateral"] == 5_001_000
    assert usdc(client, thief.pubkey()) == 0
    state = localnet.rpc("localnet_driftSetDelegate", str(agent.pubkey()), 0, str(delegate.pubkey()))
    assert state["delegate"] == str(delegate.pubkey())
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 2_000)
    settle(client, adapter, agent, signer=delegate)
    assert account(localnet, agent)["collateral"] == 5_003_000


def test_a_tampered_signature_is_refused(localnet, adapter):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 5_000_000)
    localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 1_000)
    tx = drift_transaction(client, agent, adapter.build_settle_pnl_instructions(agent, 0, 0))
    raw = bytearray(bytes(tx))
    raw[5] ^= 1
    with pytest.raises(RuntimeError, match="-32003"):
        localnet.rpc("sendTransaction", base64.b64encode(bytes(raw)).decode(), {"encoding": "base64"})


def test_transfer_out_behind_our_back_is_a_real_withdraw_signed_as_the_authority(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet)
    elsewhere = Keypair().pubkey()
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 8_000_000)
    moved = localnet.rpc("localnet_driftTransferOut", str(agent.pubkey()), 0, 3_000_000, str(elsewhere))
    assert moved["account"]["collateral"] == 4_999_999  # Drift's scaled balances round down
    assert usdc(client, elsewhere) == 3_000_000
    history = client.get_signatures_for_address(agent.pubkey()).value
    assert str(history[0].signature) == moved["signature"]
    landed = localnet.rpc("getTransaction", moved["signature"], {"encoding": "json"})
    assert "Program log: Instruction: Withdraw" in landed["meta"]["logMessages"]
    assert str(agent.pubkey()) in landed["transaction"]["message"]["accountKeys"]


def test_bad_world_building_params_change_nothing(localnet):
    agent = funded_wallet(localnet)
    for params in ([str(agent.pubkey()), -1, 5], [str(agent.pubkey()), 0, 0], [str(agent.pubkey()), 0, 2**64]):
        with pytest.raises(RuntimeError, match="-32602"):
            localnet.rpc("localnet_driftDeposit", *params)
    with pytest.raises(RuntimeError, match="-32602"):
        localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, "12")
    with pytest.raises(RuntimeError, match="-32602"):
        localnet.rpc("localnet_driftRealizePnl", str(agent.pubkey()), 0, 5, 7)  # no perp market 7
    with pytest.raises(RuntimeError, match="-32602"):
        localnet.rpc("localnet_setOraclePrice", 0, 0)
    with pytest.raises(RuntimeError, match="-32602"):
        localnet.rpc("localnet_driftTransferOut", str(agent.pubkey()), 0, 5, str(Keypair().pubkey()))
    assert account(localnet, agent) is None


def _trade(localnet, kp, direction, base, *, reduce_only=False):
    """A real market order against the AMM, signed by ``kp`` (``place_and_take_perp_order``)."""
    node = localnet.node
    user = node.drift.user(kp.pubkey(), 0)
    params = OrderParams(
        order_type=OrderType.Market(), base_asset_amount=base, market_index=0,
        direction=direction, market_type=MarketType.Perp(), reduce_only=reduce_only,
    )
    ix = dp.program().instruction["place_and_take_perp_order"](
        params, None,
        ctx=Context(
            accounts={
                "state": dp.state_pda(), "user": dp.user_pda(kp.pubkey(), 0),
                "user_stats": dp.user_stats_pda(kp.pubkey()), "authority": kp.pubkey(),
            },
            remaining_accounts=node.drift.remaining_accounts(user, writable_perp=(0,)),
        ),
    )
    client = Client(localnet.url)
    client.send_transaction(drift_transaction(client, kp, [ix]))
    localnet.rpc("localnet_advanceSlots", 1)


def test_a_pnl_written_directly_settles_and_withdraws_as_one_made_by_real_trades(localnet, adapter):
    """World building's direct write of a realized PnL is indistinguishable, to Drift's settle and
    withdraw, from the same PnL made by real orders against the AMM."""
    client = Client(localnet.url)
    traded, written = funded_wallet(localnet), funded_wallet(localnet)
    for kp in (traded, written):
        localnet.rpc("localnet_driftDeposit", str(kp.pubkey()), 0, 1_000_000_000)
    price = localnet.rpc("localnet_info")["perpMarkets"][0]["oraclePrice"]
    _trade(localnet, traded, PositionDirection.Long(), 2 * BASE_PRECISION)
    localnet.rpc("localnet_setOraclePrice", 0, price + price // 10)
    _trade(localnet, traded, PositionDirection.Short(), 2 * BASE_PRECISION, reduce_only=True)
    localnet.rpc("localnet_setOraclePrice", 0, price)
    pnl = account(localnet, traded)["unsettledPnl"]
    assert pnl != 0 and account(localnet, traded)["perpPositions"][0]["baseAssetAmount"] == 0
    localnet.rpc("localnet_driftRealizePnl", str(written.pubkey()), 0, pnl)
    fees_paid = 1_000_000_000 - account(localnet, traded)["collateral"]
    for kp in (traded, written):
        settle(client, adapter, kp)
        withdraw(client, adapter, kp, 10**12)
    assert usdc(client, traded.pubkey()) + fees_paid == usdc(client, written.pubkey())
    for kp in (traded, written):
        state = account(localnet, kp)
        assert state["settledPnl"] == pnl and state["unsettledPnl"] == 0 and state["collateral"] == 0


def test_snapshots_keep_drifts_accounts(localnet, tmp_path, adapter):
    agent = funded_wallet(localnet)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 7_000_000)
    localnet.rpc("localnet_setOraclePrice", 1, 61_000_000_000)
    path = tmp_path / "node.json"
    localnet.node.save_snapshot(path)
    restored = LocalNode.from_snapshot(path, slot_ms=0)
    assert restored.drift.account_json(agent.pubkey(), 0)["collateral"] == 7_000_000
    assert restored.drift.oracle_price(1) == 61_000_000_000
    restored.drift.check_invariants()
    localnet.rpc("localnet_setOraclePrice", 1, 60_000_000_000)


def test_the_self_check_reads_positions_as_drift_decodes_them_and_catches_a_broken_sum():
    """The self-check's fast position reader agrees with anchorpy's decode; a direct write that
    breaks Drift's sums (a user's quote amount without the market's) is caught."""
    from profitshare.localnet import drift_layout
    from profitshare.localnet.drift_world import user_positions

    node = LocalNode(slot_ms=0)
    agent = Keypair().pubkey()
    node.drift.deposit(agent, 0, 3_000_000)
    node.drift.realize_pnl(agent, 0, -250_000, 1)
    key = dp.user_pda(agent, 0)
    data = bytes(node.ledger.get_account(key).data)
    fast, full = user_positions(data), dp.decode(data)
    for ours, theirs in zip(fast.spot_positions, full.spot_positions, strict=True):
        assert (ours.market_index, ours.scaled_balance, ours.borrow) == (
            theirs.market_index, theirs.scaled_balance, "Borrow" in type(theirs.balance_type).__name__)
    for ours, theirs in zip(fast.perp_positions, full.perp_positions, strict=True):
        assert (ours.market_index, ours.base_asset_amount, ours.quote_asset_amount, ours.open_orders, ours.lp_shares) == (
            theirs.market_index, theirs.base_asset_amount, theirs.quote_asset_amount, theirs.open_orders, theirs.lp_shares)
    node.drift.check_invariants()
    broken = bytearray(data)
    slot = next(n for n, p in enumerate(fast.perp_positions) if p.market_index == 1 and p.quote_asset_amount)
    drift_layout.write_int(broken, "User", f"perp_positions[{slot}].quote_asset_amount", -1)
    node.drift._write(key, broken)
    with pytest.raises(AssertionError, match="perp market 1"):
        node.drift.check_invariants()
