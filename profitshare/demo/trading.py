"""Real trading for the demo market, on the real Drift program of the local node.

The demo plays the trading platform. Each subscriber's agent wallet stays its Drift authority
(only it can withdraw; its key stays encrypted in the product); the platform is the subaccount's
Drift *delegate* and trades it with Drift's ``place_and_take_perp_order`` against the AMM. A
crowd account of the platform's moves the AMM between a position's open and its close (the rest
of the market), and the node's oracle follows the AMM's price (``localnet_setOraclePrice``), so
closes win and lose by Drift's own arithmetic.

The realized PnL reported for a close is the one Drift computed for the closing fill: the change,
over that fill, of the position's quote asset amount less its quote entry amount (Drift moves a
reduced position's entry out proportionally and books the fill's quote and fee into the quote
asset amount), in USDC base units. Partial closes and a flip's closing leg are real fills.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass

from anchorpy import Context
from driftpy.constants.numeric_constants import AMM_RESERVE_PRECISION, PRICE_PRECISION
from driftpy.types import MarketType, OrderParams, OrderType, PositionDirection
from solders.compute_budget import set_compute_unit_limit
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from profitshare.demo.clients import NodeClient, NodeError
from profitshare.demo.wallets import PLATFORM, keypair
from profitshare.localnet import drift_program as dp

ORDER_STEP = AMM_RESERVE_PRECISION // 10_000  # the node's perp markets' order step size
CROWD_COLLATERAL = 50_000_000 * 1_000_000  # 50M USDC: the crowd never runs out of margin
TRADER_SOL = 100 * 1_000_000_000


@dataclass(frozen=True)
class Fill:
    """A subscriber's close as Drift booked it: ``market_index``, ``realized_pnl`` (USDC base
    units, fees and funding included), ``kind`` (full / partial / flip), the closing fill's
    ``signature``."""

    market_index: int
    realized_pnl: int
    kind: str
    signature: str


class DemoTrader:
    """The platform's two Drift actors on the node: ``delegate`` (trades subscribers'
    subaccounts) and ``crowd`` (its own account, moves the AMM). Keys derive from the demo seed."""

    def __init__(self, node: NodeClient, seed: int) -> None:
        self.node = node
        self.delegate = keypair(seed, PLATFORM, "delegate")
        self.crowd = keypair(seed, PLATFORM, "crowd")
        self._markets: list[dict] | None = None
        self._nonce = 0

    # --- setup -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Fund the platform's keys (SOL for fees) and the crowd's Drift account, once."""
        for key in (self.delegate, self.crowd):
            if self.node.lamports(str(key.pubkey())) < TRADER_SOL // 10:
                self.node.rpc("requestAirdrop", str(key.pubkey()), TRADER_SOL)
        crowd = self.node.rpc("localnet_driftAccount", str(self.crowd.pubkey()), 0)
        if crowd is None or crowd["collateral"] < CROWD_COLLATERAL // 2:
            self.node.rpc("localnet_driftDeposit", str(self.crowd.pubkey()), 0, CROWD_COLLATERAL)

    def delegate_to_platform(self, agent_wallet: str) -> None:
        """Make the platform the Drift delegate of the agent's subaccount 0 (idempotent)."""
        account = self.node.rpc("localnet_driftAccount", agent_wallet, 0)
        if account is None or account["delegate"] != str(self.delegate.pubkey()):
            self.node.rpc("localnet_driftSetDelegate", agent_wallet, 0, str(self.delegate.pubkey()))

    def markets(self) -> list[dict]:
        """The node's perp markets ``[{index, name, oraclePrice}]`` (read once)."""
        if self._markets is None:
            self._markets = self.node.rpc("localnet_info")["perpMarkets"]
        return self._markets

    # --- one close ---------------------------------------------------------------------------
    def close_one(self, rng: random.Random, agent_wallet: str, kind: str) -> Fill:
        """Trade one close of ``kind`` on the agent's subaccount: open a position when it has
        none in the chosen market, let the crowd move the AMM, close (all, half, or a flip's
        closing leg) and return Drift's realized PnL of that closing fill. Raises ``NodeError``
        when Drift refuses an order (e.g. not enough margin)."""
        agent = Pubkey.from_string(agent_wallet)
        market = rng.choice(self.markets())
        index = market["index"]
        position = self._position(agent, index)
        if position is None or position.base_asset_amount == 0:
            notional = rng.randint(200, 2_000) * PRICE_PRECISION  # USDC, in PRICE_PRECISION
            base = _step(notional * AMM_RESERVE_PRECISION // self.mark_price(index))
            direction = rng.choice((PositionDirection.Long(), PositionDirection.Short()))
            self._order(self.delegate, agent, index, direction, base)
            position = self._position(agent, index)
        held = position.base_asset_amount
        long = held > 0
        # the crowd moves the AMM (about 0.5-3 %): with the position 65 % of the time (it wins)
        push = _step(abs(held) * rng.randint(60, 300))
        crowd_long = long if rng.random() < 0.65 else not long
        self._order(self.crowd, self.crowd.pubkey(), index, _direction(crowd_long), push)
        self.follow_oracle(index)
        if kind == "partial":
            size, reduce_only = _step(abs(held) // 2) or abs(held), True
        elif kind == "flip":
            size, reduce_only = _step(abs(held) * 3 // 2), False
        else:
            size, reduce_only = abs(held), True
        before = self._position(agent, index)
        signature = self._order(self.delegate, agent, index, _direction(not long), size, reduce_only=reduce_only)
        after = self._position(agent, index)
        realized = (after.quote_asset_amount - after.quote_entry_amount) - (
            before.quote_asset_amount - before.quote_entry_amount
        )
        # the crowd steps back out: the AMM returns near where it was
        self._order(self.crowd, self.crowd.pubkey(), index, _direction(not crowd_long), push, reduce_only=True)
        self.follow_oracle(index)
        return Fill(index, realized, kind, signature)

    # --- Drift ---------------------------------------------------------------------------------
    def mark_price(self, index: int) -> int:
        """The AMM's reserve price of perp market ``index`` (PRICE_PRECISION)."""
        market = self._decode(dp.perp_market_pda(index))
        amm = market.amm
        return amm.quote_asset_reserve * amm.peg_multiplier // amm.base_asset_reserve

    def follow_oracle(self, index: int) -> None:
        """Set the market's Prelaunch oracle to the AMM's price (the node's oracle moves)."""
        self.node.rpc("localnet_setOraclePrice", index, self.mark_price(index))

    def _decode(self, key: Pubkey):
        value = self.node.rpc("getAccountInfo", str(key), {"encoding": "base64"})["value"]
        if value is None:
            raise NodeError(f"no Drift account at {key}")
        return dp.decode(base64.b64decode(value["data"][0]))

    def _position(self, authority: Pubkey, index: int):
        user = self._decode(dp.user_pda(authority, 0))
        for position in user.perp_positions:
            if position.market_index == index and (position.base_asset_amount or position.quote_asset_amount):
                return position
        return None

    def _order(self, signer: Keypair, authority: Pubkey, index: int, direction, base: int, *, reduce_only=False) -> str:
        """A market order of ``base`` (AMM_RESERVE_PRECISION) on ``authority``'s subaccount 0,
        filled by the AMM at once, signed by ``signer`` (the authority or its delegate)."""
        user = self._decode(dp.user_pda(authority, 0))
        params = OrderParams(
            order_type=OrderType.Market(), base_asset_amount=base, market_index=index,
            direction=direction, market_type=MarketType.Perp(), reduce_only=reduce_only,
        )
        ix = dp.program().instruction["place_and_take_perp_order"](
            params, None,
            ctx=Context(
                accounts={
                    "state": dp.state_pda(), "user": dp.user_pda(authority, 0),
                    "user_stats": dp.user_stats_pda(authority), "authority": signer.pubkey(),
                },
                remaining_accounts=dp.remaining_accounts(user, writable_perp=(index,)),
            ),
        )
        blockhash = Hash.from_string(self.node.rpc("getLatestBlockhash")["value"]["blockhash"])
        # a compute-unit limit that differs per order keeps two equal orders in one slot distinct
        self._nonce = (self._nonce + 1) % 10_000
        budget = set_compute_unit_limit(300_000 - self._nonce)
        tx = Transaction([signer], Message([budget, ix], signer.pubkey()), blockhash)
        return self.node.rpc("sendTransaction", base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"})


def _step(base: int) -> int:
    """``base`` rounded down to the order step size."""
    return base - base % ORDER_STEP


def _direction(long: bool):
    return PositionDirection.Long() if long else PositionDirection.Short()
