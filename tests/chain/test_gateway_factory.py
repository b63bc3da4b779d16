"""``get_gateway()`` builds the gateway from Django settings."""

from __future__ import annotations

from profitshare.chain.drift.driftpy_adapter import DriftpyAdapter
from profitshare.chain.gateway import get_gateway
from tests.chain.gateway_support import USDC, funded_agent, wallet


def test_gateway_from_settings_reaches_the_node(localnet, settings):
    settings.QV_RPC_URLS = [localnet.url]
    gateway = get_gateway()
    assert isinstance(gateway.drift, DriftpyAdapter)
    assert gateway.drift.pool is gateway.pool  # Drift reads fail over with every other read
    assert gateway.usdc_mint == USDC
    assert gateway.pool.urls == [localnet.url]
    assert gateway.payout_compute_unit_limit == settings.QV_PAYOUT_COMPUTE_UNIT_LIMIT
    assert gateway.priority_fee_microlamports == settings.QV_PRIORITY_FEE_MICROLAMPORTS
    agent = funded_agent(localnet, lamports=5_000_000, usdc=42)
    assert wallet(gateway, agent.pubkey()).lamports == 5_000_000
    assert (wallet(gateway, agent.pubkey()).usdc or 0) == 42


def test_gateway_is_built_offline(settings):
    settings.QV_RPC_URLS = ["http://127.0.0.1:9", "http://127.0.0.1:10"]
    assert isinstance(get_gateway().drift, DriftpyAdapter)
