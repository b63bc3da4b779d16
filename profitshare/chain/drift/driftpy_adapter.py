"""Real-cluster Drift access through driftpy 0.8.89: build settle-PnL / withdraw instructions and
read a subaccount's USDC figures.

This adapter only *builds* instructions and *reads* accounts; signing, sending and confirming is
the chain gateway's job. Instructions come from driftpy's own builders
(``DriftClient.get_settle_pnl_ix`` and ``DriftClient.get_withdraw_collateral_ix``, the latter is
what driftpy calls its withdraw builder), so the remaining accounts (oracles, spot and perp
markets) are exactly the ones driftpy computes from the subaccount's positions.

How driftpy is driven (no ``subscribe()``, no websocket):

1. a ``DriftClient`` per call, with ``AccountSubscriptionConfig("cached")``, no markets and no
   oracles (nothing is read at construction);
2. ``DriftClient.add_user(subaccount_id)`` reads the ``User`` account (one ``getAccountInfo``);
3. the spot markets (always 0 = USDC) and perp markets the builder needs, i.e. those of the
   user's non-empty positions plus the one asked for, are read with driftpy's
   ``get_*_market_account_and_slot`` (one ``getAccountInfo`` each) and handed to the client
   with ``DriftClient.resurrect`` (driftpy's public way to fill a "cached" client). Oracle
   prices are not read: instruction building does not need them;
4. the withdraw builder itself reads the destination token account (``getAccountInfo``) and, if
   it does not exist, prepends a create-associated-token-account instruction (payer and owner =
   the authority). We then require the destination to be the authority's associated token
   account for the market's mint, otherwise that create instruction would fail on chain.

Connections: pass an RPC URL (a fresh ``AsyncClient`` is opened and closed per call, so the
synchronous methods work from Django/django-q2 workers), a zero-argument factory returning a
new ``AsyncClient`` (same), or an ``AsyncClient`` instance (the caller owns its lifecycle and
event loop: only the ``*_async`` methods may be used then).

Units: every amount is in token base units (USDC: 6 decimals, Drift's QUOTE_PRECISION = 1e6).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from driftpy.account_subscription_config import AccountSubscriptionConfig
from driftpy.accounts.get_accounts import (
    get_perp_market_account_and_slot,
    get_spot_market_account_and_slot,
)
from driftpy.accounts.oracle import get_oracle_price_data_and_slot
from driftpy.constants.numeric_constants import (
    AMM_RESERVE_PRECISION,
    FUNDING_RATE_BUFFER,
    MARGIN_PRECISION,
    QUOTE_SPOT_MARKET_INDEX,
    SPOT_IMF_PRECISION,
)
from driftpy.drift_client import DriftClient
from driftpy.math.perp_position import calculate_worst_case_base_asset_amount, is_available
from driftpy.math.spot_position import is_spot_position_available
from driftpy.types import UserStatus, is_variant
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

__all__ = ["DriftAccountNotFound", "DriftSubaccountState", "DriftpyAdapter"]

T = TypeVar("T")

#: Spot balances are stored scaled by SPOT_BALANCE_PRECISION (1e9) and multiplied by a cumulative
#: interest index with SPOT_CUMULATIVE_INTEREST_PRECISION (1e10): 19 = 9 + 10 decimal places.
_SPOT_SCALE_DECIMALS = 19


class DriftAccountNotFound(LookupError):
    """A Drift account the operation needs (the ``User`` subaccount or a market) does not exist."""


@dataclass(frozen=True)
class DriftSubaccountState:
    """USDC figures of one Drift subaccount, all in USDC base units (6 decimals), as integers.

    * ``collateral``: USDC spot balance (negative if borrowed) + ``unsettled_pnl``. Unweighted:
      Drift's own "total collateral" additionally applies asset weights to positive PnL.
    * ``withdrawable``: what a ``withdraw`` with ``reduceOnly=True`` of USDC should be able to
      deliver now (see :meth:`DriftpyAdapter.read_subaccount` for the approximation).
    * ``settled_pnl``: the ``User.settled_perp_pnl`` counter (lifetime PnL already settled into
      the USDC balance).
    * ``unsettled_pnl``: PnL of the perp positions not yet settled into the USDC balance:
      closed-but-unsettled PnL plus the mark-to-oracle PnL (with funding) of open positions.
    """

    collateral: int
    withdrawable: int
    settled_pnl: int
    unsettled_pnl: int


ConnectionSource = str | AsyncClient | Callable[[], AsyncClient]


class DriftpyAdapter:
    """Builds Drift instructions with driftpy and reads subaccounts, against a real RPC node.

    ``connection``: an RPC URL, a factory returning a fresh ``AsyncClient``, or an
    ``AsyncClient`` (async methods only; see the module docstring). ``env`` is driftpy's
    environment name (``"mainnet"`` or ``"devnet"``; both use the same Drift program id).
    ``commitment`` is used for URL-created clients.

    Synchronous methods run their coroutine with ``asyncio.run`` and raise ``RuntimeError`` when
    called from a running event loop or with a shared ``AsyncClient`` instance.
    """

    def __init__(
        self,
        connection: ConnectionSource,
        *,
        env: str = "mainnet",
        commitment: Commitment = Confirmed,
    ) -> None:
        self._env = env
        self._commitment = commitment
        self._shared: AsyncClient | None = None
        self._factory: Callable[[], AsyncClient] | None = None
        if isinstance(connection, str):
            url = connection
            self._factory = lambda: AsyncClient(url, commitment=commitment)
        elif isinstance(connection, AsyncClient):
            self._shared = connection
        elif callable(connection):
            self._factory = connection
        else:
            raise TypeError("connection must be an RPC URL, an AsyncClient or a factory of one")

    def __repr__(self) -> str:
        return f"DriftpyAdapter(env={self._env!r})"

    # --- public synchronous API -------------------------------------------------------------

    def build_settle_pnl_instructions(
        self, authority_keypair: Keypair, subaccount_id: int, perp_market_index: int
    ) -> list[Instruction]:
        """Build ``[settlePnl]`` for one perp market of the authority's subaccount (driftpy).

        Returns one Drift instruction: the IDL accounts (state, user, authority,
        spotMarketVault of USDC) followed by driftpy's remaining accounts (oracles, spot
        markets, perp markets of the user's positions; the settled perp market and the USDC
        spot market writable). Reads the User account and those markets over RPC.
        Raises ``ValueError`` for an index outside 0..65535, ``DriftAccountNotFound`` if the
        subaccount or a market does not exist.
        """
        return self._run(
            self.build_settle_pnl_instructions_async(
                authority_keypair, subaccount_id, perp_market_index
            )
        )

    def build_withdraw_instructions(
        self,
        authority_keypair: Keypair,
        subaccount_id: int,
        spot_market_index: int,
        amount: int,
        reduce_only: bool = True,
        *,
        user_token_account: Pubkey,
    ) -> list[Instruction]:
        """Build the instructions withdrawing ``amount`` base units to ``user_token_account``.

        Returns ``[withdraw]`` or, when the destination token account does not exist yet,
        ``[create_associated_token_account_idempotent, withdraw]`` (driftpy's choice; payer and
        owner = the authority). ``reduce_only=True`` (default) forbids borrowing.
        Raises ``ValueError`` if ``amount`` is not an int in 0..2**64-1, an index is outside
        0..65535, ``reduce_only`` is not a bool, or the destination must be created but is not
        the authority's associated token account for the market's mint;
        ``DriftAccountNotFound`` if the subaccount or a market does not exist.
        """
        return self._run(
            self.build_withdraw_instructions_async(
                authority_keypair,
                subaccount_id,
                spot_market_index,
                amount,
                reduce_only,
                user_token_account=user_token_account,
            )
        )

    def read_subaccount(self, authority: Pubkey, subaccount_id: int) -> DriftSubaccountState:
        """Read and decode ``authority``'s subaccount and return its USDC figures.

        Reads: the ``User`` account (decoded with driftpy's IDL layouts), spot market 0 (USDC),
        the perp market of every non-empty perp position, and the oracle of every *open* one.
        Derivation (all integer arithmetic, mirroring the Drift program's rounding):

        * USDC balance = ``scaled_balance * cumulative_deposit_interest // 10**(19 - decimals)``
          (deposits round down; borrows ``ceil`` with ``cumulative_borrow_interest``, negative).
        * per perp position: closed (base 0) -> ``quote_asset_amount``; open -> ``±|base| *
          oracle_price // 1e9 + quote_asset_amount`` (expiry price for a market in Settlement)
          minus funding owed ``floor((cum_funding - last_cum_funding) * base / 1e12)``.
          ``unsettled_pnl`` is their sum.
        * initial margin of open positions = ``ceil(|worst-case base incl. open orders| * price
          / 1e9 * ratio / 1e4)``, ratio = max(market initial ratio with Drift's size premium
          (integer sqrt), the user's custom max margin ratio).
        * ``withdrawable = max(0, min(USDC deposit, USDC balance + Σ negative position PnL -
          initial margin))``; 0 if the user is being liquidated or bankrupt.

        Approximations: only USDC (spot market 0) is counted, other spot positions are ignored
        (QuantumVault subaccounts hold only USDC); positive unsettled PnL is not counted as
        withdrawable (settle first, as the payout does); the quote price is taken as exactly
        1 USDC; high-leverage mode margin is ignored (it would only allow more); Drift's daily
        withdraw limits and market-level pauses are not modelled (the withdraw then fails with
        a Drift error, e.g. ``DailyWithdrawLimit`` 6128).
        Raises ``DriftAccountNotFound`` if the subaccount or a needed market/oracle is missing.
        """
        return self._run(self.read_subaccount_async(authority, subaccount_id))

    # --- async API ---------------------------------------------------------------------------

    async def build_settle_pnl_instructions_async(
        self, authority_keypair: Keypair, subaccount_id: int, perp_market_index: int
    ) -> list[Instruction]:
        """Coroutine version of :meth:`build_settle_pnl_instructions` (same result and errors)."""
        _check_u16("subaccount_id", subaccount_id)
        _check_u16("perp_market_index", perp_market_index)
        async with self._connection() as conn:
            client, user_pubkey, user = await self._loaded_client(
                conn, authority_keypair, None, subaccount_id, perp_indexes=[perp_market_index]
            )
            return [client.get_settle_pnl_ix(user_pubkey, user, perp_market_index)]

    async def build_withdraw_instructions_async(
        self,
        authority_keypair: Keypair,
        subaccount_id: int,
        spot_market_index: int,
        amount: int,
        reduce_only: bool = True,
        *,
        user_token_account: Pubkey,
    ) -> list[Instruction]:
        """Coroutine version of :meth:`build_withdraw_instructions` (same result and errors)."""
        _check_u16("subaccount_id", subaccount_id)
        _check_u16("spot_market_index", spot_market_index)
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < 2**64:
            raise ValueError(f"amount must be an int in 0..2**64-1 (base units), got {amount!r}")
        if not isinstance(reduce_only, bool):
            raise ValueError(f"reduce_only must be a bool, got {reduce_only!r}")
        async with self._connection() as conn:
            client, _, _ = await self._loaded_client(
                conn, authority_keypair, None, subaccount_id, spot_indexes=[spot_market_index]
            )
            ixs = await client.get_withdraw_collateral_ix(
                amount, spot_market_index, user_token_account, reduce_only, subaccount_id
            )
        if len(ixs) > 1:
            mint = client.get_spot_market_account(spot_market_index).mint
            ata = get_associated_token_address(authority_keypair.pubkey(), mint)
            if user_token_account != ata:
                raise ValueError(
                    f"token account {user_token_account} does not exist and is not the "
                    f"authority's associated token account {ata} for mint {mint}"
                )
        return list(ixs)

    async def read_subaccount_async(
        self, authority: Pubkey, subaccount_id: int
    ) -> DriftSubaccountState:
        """Coroutine version of :meth:`read_subaccount` (same result and errors)."""
        _check_u16("subaccount_id", subaccount_id)
        async with self._connection() as conn:
            client, _, user = await self._loaded_client(conn, None, authority, subaccount_id)
            open_positions = [p for p in user.perp_positions if p.base_asset_amount != 0]
            prices = await _gather(
                self._oracle_price(conn, client.get_perp_market_account(p.market_index))
                for p in open_positions
            )
        price_by_market = {
            p.market_index: price for p, price in zip(open_positions, prices, strict=True)
        }
        return _subaccount_state(client, user, price_by_market)

    # --- internals -------------------------------------------------------------------------

    def _run(self, coro: Awaitable[T]) -> T:
        if self._shared is not None:
            coro.close()  # type: ignore[attr-defined]
            raise RuntimeError(
                "DriftpyAdapter built on a shared AsyncClient: use the *_async methods, or pass "
                "an RPC URL / client factory for synchronous use"
            )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            running = False
        else:
            running = True
        if not running:
            return asyncio.run(coro)  # type: ignore[arg-type]
        coro.close()  # type: ignore[attr-defined]
        raise RuntimeError("called from a running event loop: use the *_async methods")

    @asynccontextmanager
    async def _connection(self):
        if self._shared is not None:
            yield self._shared
            return
        conn = self._factory()
        try:
            yield conn
        finally:
            await conn.close()

    async def _loaded_client(
        self,
        conn: AsyncClient,
        keypair: Keypair | None,
        authority: Pubkey | None,
        subaccount_id: int,
        *,
        perp_indexes: Iterable[int] = (),
        spot_indexes: Iterable[int] = (),
    ) -> tuple[DriftClient, Pubkey, Any]:
        """A cached-mode DriftClient holding the user and every market the builders touch."""
        client = DriftClient(
            conn,
            keypair if keypair is not None else Keypair(),  # throwaway wallet for reads only
            env=self._env,
            authority=authority,
            account_subscription=AccountSubscriptionConfig("cached", commitment=self._commitment),
            perp_market_indexes=[],
            spot_market_indexes=[],
            oracle_infos=[],
            sub_account_ids=[subaccount_id],
            active_sub_account_id=subaccount_id,
        )
        await client.add_user(subaccount_id)
        user_and_slot = client.get_user(subaccount_id).get_user_account_and_slot()
        user_pubkey = client.get_user_account_public_key(subaccount_id)
        if user_and_slot is None:
            raise DriftAccountNotFound(
                f"Drift user account {user_pubkey} (authority {client.authority}, "
                f"subaccount {subaccount_id}) does not exist"
            )
        user = user_and_slot.data
        perp = sorted(
            {p.market_index for p in user.perp_positions if not is_available(p)} | set(perp_indexes)
        )
        perp_markets = await _gather(
            get_perp_market_account_and_slot(client.program, i) for i in perp
        )
        for index, market in zip(perp, perp_markets, strict=True):
            if market is None:
                raise DriftAccountNotFound(f"Drift perp market {index} does not exist")
        spot = sorted(
            {s.market_index for s in user.spot_positions if not is_spot_position_available(s)}
            | {QUOTE_SPOT_MARKET_INDEX}
            | {m.data.quote_spot_market_index for m in perp_markets}
            | set(spot_indexes)
        )
        spot_markets = await _gather(
            get_spot_market_account_and_slot(client.program, i) for i in spot
        )
        for index, market in zip(spot, spot_markets, strict=True):
            if market is None:
                raise DriftAccountNotFound(f"Drift spot market {index} does not exist")
        spot_map = dict(zip(spot, spot_markets, strict=True))
        client.resurrect(spot_map, dict(zip(perp, perp_markets, strict=True)), {}, {})
        return client, user_pubkey, user

    @staticmethod
    async def _oracle_price(conn: AsyncClient, market: Any) -> int:
        if is_variant(market.status, "Settlement"):
            return int(market.expiry_price)
        try:
            data = await get_oracle_price_data_and_slot(
                conn, market.amm.oracle, market.amm.oracle_source
            )
        except ValueError as exc:  # driftpy: "Oracle account not found"
            raise DriftAccountNotFound(str(exc)) from exc
        return int(data.data.price)


async def _gather(aws: Iterable[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*aws))


def _check_u16(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**16 - 1:
        raise ValueError(f"{what} must be an int in 0..65535, got {value!r}")


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _usdc_balance(user: Any, usdc_market: Any) -> int:
    """Signed USDC token amount of the user's quote spot position (Drift spot_balance.rs)."""
    scale = 10 ** (_SPOT_SCALE_DECIMALS - usdc_market.decimals)
    for pos in user.spot_positions:
        if pos.market_index == QUOTE_SPOT_MARKET_INDEX and not is_spot_position_available(pos):
            if is_variant(pos.balance_type, "Deposit"):
                return pos.scaled_balance * usdc_market.cumulative_deposit_interest // scale
            return -_ceil_div(pos.scaled_balance * usdc_market.cumulative_borrow_interest, scale)
    return 0


def _initial_margin_ratio(market: Any, size: int, custom_margin_ratio: int) -> int:
    """Initial margin ratio (MARGIN_PRECISION = 1e4) with Drift's size premium, integer sqrt.

    Mirrors driftpy ``calculate_market_margin_ratio`` / Drift ``calculate_size_premium_liability_
    weight`` (non-high-leverage path), with ``math.isqrt`` instead of driftpy's float sqrt.
    """
    if is_variant(market.status, "Settlement"):
        return 0
    ratio = market.margin_ratio_initial
    if market.imf_factor:
        size_sqrt = math.isqrt(abs(size) * 10 + 1)
        numerator = ratio - ratio // 5
        denom = (100_000 * SPOT_IMF_PRECISION) // MARGIN_PRECISION
        ratio = max(ratio, numerator + size_sqrt * market.imf_factor // denom)
    return max(ratio, custom_margin_ratio)


def _subaccount_state(
    client: DriftClient, user: Any, price_by_market: dict[int, int]
) -> DriftSubaccountState:
    usdc_balance = _usdc_balance(user, client.get_spot_market_account(QUOTE_SPOT_MARKET_INDEX))
    unsettled = 0
    negative_pnl = 0
    margin = 0
    for pos in user.perp_positions:
        if is_available(pos):
            continue
        base = pos.base_asset_amount
        pnl = pos.quote_asset_amount
        if base != 0:
            market = client.get_perp_market_account(pos.market_index)
            price = price_by_market[pos.market_index]
            value = abs(base) * price // AMM_RESERVE_PRECISION
            pnl += value if base > 0 else -value
            cum = (
                market.amm.cumulative_funding_rate_long
                if base > 0
                else market.amm.cumulative_funding_rate_short
            )
            pnl += -((cum - pos.last_cumulative_funding_rate) * base) // (
                AMM_RESERVE_PRECISION * FUNDING_RATE_BUFFER
            )
            worst_base = calculate_worst_case_base_asset_amount(pos, market, price)
            ratio = _initial_margin_ratio(market, worst_base, user.max_margin_ratio)
            margin += _ceil_div(
                abs(worst_base) * price * ratio, AMM_RESERVE_PRECISION * MARGIN_PRECISION
            )
        unsettled += pnl
        negative_pnl += min(0, pnl)
    deposit = max(0, usdc_balance)
    withdrawable = max(0, min(deposit, usdc_balance + negative_pnl - margin))
    if user.status & (UserStatus.BEING_LIQUIDATED | UserStatus.BANKRUPT):
        withdrawable = 0
    return DriftSubaccountState(
        collateral=usdc_balance + unsettled,
        withdrawable=withdrawable,
        settled_pnl=int(user.settled_perp_pnl),
        unsettled_pnl=unsettled,
    )
