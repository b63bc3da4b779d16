"""The close stream: real positions open and close on Drift, and each close is reported.

Stream closes are traded for real (``trading.DemoTrader``: the platform, as the subscriber's Drift
delegate, fills market orders against the AMM) and reported with the realized PnL Drift booked
for the closing fill. The staged cases realize an exact PnL instead (``localnet_driftRealizePnl``:
the subscriber's Drift subaccount gains or loses that PnL, unsettled until the engine settles it).
Either way the close is reported through the signed ``POST /api/v1/trade-closes``, exactly as the
trading platform reports it: one unique close id, this close's realized PnL only (signed USDC base
units), its kind.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from profitshare.demo.clients import IntakeClient, NodeClient
from profitshare.demo.trading import DemoTrader
from profitshare.demo.world import DRIFT_SUBACCOUNT, DemoSubscription

KINDS = (("full", 5), ("partial", 3), ("flip", 2))
_counter = itertools.count(1)


@dataclass(frozen=True)
class Close:
    """A close to report: ids, signed realized PnL (USDC base units), kind, market; ``realized``:
    already booked on Drift by a real fill (else the report realizes it on the node first)."""

    close_id: str
    subscription_id: str
    agent_wallet: str
    realized_pnl: int
    kind: str
    market_index: int
    realized: bool = False


def new_close_id(seed: int) -> str:
    """A close id unique across runs: ``demo{seed}-{unix ms, hex}-{counter}`` (<= 64 chars)."""
    return f"demo{seed}-{int(time.time() * 1000):x}-{next(_counter)}"


def traded_close(rng: random.Random, seed: int, sub: DemoSubscription, trader: DemoTrader) -> Close:
    """Trade one close of ``sub`` for real (full, partial or a flip's closing leg, by weight)
    and return it with Drift's realized PnL. Raises ``NodeError`` when Drift refuses an order."""
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    fill = trader.close_one(rng, sub.agent_wallet, kind)
    return Close(
        new_close_id(seed), sub.subscription_id, sub.agent_wallet, fill.realized_pnl, kind, fill.market_index,
        realized=True,
    )


def report(close: Close, api: IntakeClient, node: NodeClient) -> dict:
    """Realize ``close`` on the node unless a real fill already did, then report it over the
    signed API; returns the API's answer ``{"close_id", "status"}``. Raises ``NodeError`` /
    ``ApiError``."""
    if not close.realized:
        node.rpc(
            "localnet_driftRealizePnl", close.agent_wallet, DRIFT_SUBACCOUNT, close.realized_pnl, close.market_index
        )
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
    """A close of exactly ``pnl`` base units on ``sub`` in market 0 (for the staged cases)."""
    return Close(new_close_id(seed), sub.subscription_id, sub.agent_wallet, pnl, kind, 0)
