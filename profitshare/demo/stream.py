"""The close stream: positions close on the emulated Drift accounts and are reported.

Each close is first realized on the node (``localnet_driftRealizePnl``: the agent's Drift
subaccount gains or loses that PnL, unsettled until the engine settles it) and then reported
through the signed ``POST /api/v1/trade-closes``, exactly as the trading platform reports it:
one unique close id, this close's realized PnL only (signed USDC base units), its kind.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from profitshare.demo.clients import IntakeClient, NodeClient
from profitshare.demo.world import DRIFT_SUBACCOUNT, DemoSubscription
from profitshare.money import USDC

MARKETS = (0, 1, 2)  # Drift perp markets: SOL, BTC, ETH
KINDS = (("full", 5), ("partial", 3), ("flip", 2))
_counter = itertools.count(1)


@dataclass(frozen=True)
class Close:
    """A close to report: ids, signed realized PnL (USDC base units), kind, market."""

    close_id: str
    subscription_id: str
    agent_wallet: str
    realized_pnl: int
    kind: str
    market_index: int


def new_close_id(seed: int) -> str:
    """A close id unique across runs: ``demo{seed}-{unix ms, hex}-{counter}`` (<= 64 chars)."""
    return f"demo{seed}-{int(time.time() * 1000):x}-{next(_counter)}"


def random_close(rng: random.Random, seed: int, sub: DemoSubscription) -> Close:
    """A random close of ``sub``: 60 % winners (0.5–80 USDC), 40 % losers (0.5–60 USDC); full,
    partial or a flip's closing leg. Integers only."""
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    if rng.random() < 0.6:
        pnl = rng.randint(USDC // 2, 80 * USDC)
    else:
        pnl = -rng.randint(USDC // 2, 60 * USDC)
    return Close(new_close_id(seed), sub.subscription_id, sub.agent_wallet, pnl, kind, rng.choice(MARKETS))


def report(close: Close, api: IntakeClient, node: NodeClient) -> dict:
    """Realize ``close`` on the node, then report it over the signed API; returns the API's
    answer ``{"close_id", "status"}``. Raises ``NodeError`` / ``ApiError``."""
    node.rpc("localnet_driftRealizePnl", close.agent_wallet, DRIFT_SUBACCOUNT, close.realized_pnl)
    _, body = api.post("/trade-closes", {
        "close_id": close.close_id,
        "subscription_id": close.subscription_id,
        "market_index": close.market_index,
        "realized_pnl": close.realized_pnl,
        "kind": close.kind,
        "closed_at": datetime.now(UTC).isoformat(),
    })
    return body


def make_close(seed: int, sub: DemoSubscription, pnl: int, kind: str = "full") -> Close:
    """A close of ``pnl`` base units on ``sub`` (for the staged cases)."""
    return Close(new_close_id(seed), sub.subscription_id, sub.agent_wallet, pnl, kind, 0)
