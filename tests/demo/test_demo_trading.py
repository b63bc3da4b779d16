"""The demo's trading: real Drift orders placed by the platform as each subscriber's delegate, and
realized PnL taken from Drift's own booking of the closing fill."""

from __future__ import annotations

import random

import pytest
from solders.keypair import Keypair

from profitshare.demo.clients import NodeClient, NodeError
from profitshare.demo.trading import DemoTrader


@pytest.fixture
def trader(localnet):
    node = NodeClient(localnet.url)
    trader = DemoTrader(node, seed=4242)
    trader.prepare()
    yield trader
    node.close()


def _subscriber(localnet, trader, collateral=3_000_000_000):
    agent = Keypair()
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, collateral)
    trader.delegate_to_platform(str(agent.pubkey()))
    return str(agent.pubkey())


def _position(localnet, agent, market):
    account = localnet.rpc("localnet_driftAccount", agent, 0)
    return next((p for p in account["perpPositions"] if p["marketIndex"] == market), None)


def test_the_platform_trades_as_the_delegate_and_reports_drifts_realized_pnl(localnet, trader):
    agent = _subscriber(localnet, trader)
    assert localnet.rpc("localnet_driftAccount", agent, 0)["delegate"] == str(trader.delegate.pubkey())
    fill = trader.close_one(random.Random(7), agent, "full")
    position = _position(localnet, agent, fill.market_index)
    assert position["baseAssetAmount"] == 0  # closed by a real fill
    # Drift's unsettled PnL = this close's realized PnL + the opening fill's fee (booked at open)
    opening_fee = position["unsettledPnl"] - fill.realized_pnl
    assert -5_000_000 <= opening_fee <= 0
    landed = localnet.rpc("getTransaction", fill.signature, {"encoding": "json"})
    assert "Program log: Instruction: PlaceAndTakePerpOrder" in landed["meta"]["logMessages"]
    assert landed["transaction"]["message"]["accountKeys"][0] == str(trader.delegate.pubkey())


def test_partial_and_flip_closes_are_real_fills(localnet, trader):
    rng = random.Random(11)
    agent = _subscriber(localnet, trader)
    trader._markets = [trader.markets()[0]]  # one market, so the second close acts on the first's position
    first = trader.close_one(rng, agent, "partial")
    held = _position(localnet, agent, first.market_index)["baseAssetAmount"]
    assert held != 0
    second = trader.close_one(rng, agent, "flip")
    flipped = _position(localnet, agent, second.market_index)["baseAssetAmount"]
    assert flipped != 0 and (flipped > 0) != (held > 0)
    trader._markets = None


def test_many_closes_win_and_lose_by_drifts_arithmetic(localnet, trader):
    rng = random.Random(3)
    agents = [_subscriber(localnet, trader) for _ in range(3)]
    fills = [trader.close_one(rng, rng.choice(agents), "full") for _ in range(12)]
    assert any(f.realized_pnl > 0 for f in fills) and any(f.realized_pnl < 0 for f in fills)
    localnet.node.checked()


def test_an_order_drift_refuses_is_a_node_error(localnet, trader):
    agent = _subscriber(localnet, trader, collateral=1_000_000)  # 1 USDC: no margin for 200+ USDC
    with pytest.raises(NodeError):
        trader.close_one(random.Random(5), agent, "full")
