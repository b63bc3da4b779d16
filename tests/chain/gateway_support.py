"""Helpers for the chain gateway tests: a gateway on the local node, funded agent wallets."""

from __future__ import annotations

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from profitshare.chain.drift.driftpy_adapter import DriftpyAdapter
from profitshare.chain.gateway import ChainGateway
from profitshare.chain.rpc import RpcPool
from profitshare.chain.transactions import Transactions

USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
ATA_RENT = 2_039_280  # rent-exempt minimum of a 165-byte token account (LiteSVM, mainnet)
FEE = 5_000  # lamports per signature


def make_pool(*urls: str, max_attempts: int = 3, timeout: float = 5) -> RpcPool:
    """A pool with short backoff, for tests."""
    return RpcPool(
        list(urls),
        timeout_seconds=timeout,
        max_attempts=max_attempts,
        backoff_initial=0.01,
        backoff_max=0.05,
    )


def make_gateway(localnet, *, priority: int = 0, max_attempts: int = 3, **kwargs) -> ChainGateway:
    """A gateway on the test node (the real Drift program, reached through driftpy)."""
    pool = make_pool(localnet.url, max_attempts=max_attempts)
    return ChainGateway(
        pool,
        usdc_mint=USDC,
        drift=DriftpyAdapter(pool),
        priority_fee_microlamports=priority,
        payout_compute_unit_limit=60_000,
        transactions=Transactions(pool, poll_interval=0.02),
        confirm_timeout=kwargs.pop("confirm_timeout", 2.0),
        **kwargs,
    )


def funded_agent(localnet, *, lamports: int = 10**9, usdc: int = 0) -> Keypair:
    """A new agent keypair with ``lamports`` SOL and ``usdc`` base units in its USDC ATA."""
    agent = Keypair()
    localnet.rpc("requestAirdrop", str(agent.pubkey()), lamports)
    if usdc:
        localnet.rpc("localnet_fundUsdc", str(agent.pubkey()), usdc)
    return agent
