"""Drift access through driftpy 0.8.89: build settle-PnL / withdraw instructions and read a
subaccount's USDC figures. The one Drift adapter: on mainnet and on the local node (which runs the
real Drift v2 program).

This adapter only *builds* instructions and *reads* accounts; signing, sending and confirming is
the chain gateway's job. Instructions come from driftpy's own program (its IDL) and driftpy's own
remaining-account rules (``DriftClient.get_remaining_accounts_for_users`` and
``add_*_market_to_remaining_account_maps``: oracles, spot markets, perp markets of the user's
positions, the settled market and USDC writable), exactly what ``DriftClient.get_settle_pnl_ix``
and ``get_withdraw_collateral_ix`` produce.

Reads go through the gateway's ``RpcPool`` (failover, retries; ``getMultipleAccounts``), never a
connection of driftpy's own: ``chain/`` is the only package that speaks JSON-RPC, and one RPC
round per read keeps a batch of payouts cheap. One ``DriftClient`` per adapter is kept, offline,
for its program (IDL parsing costs ~0.1 s, so it is never done per call) and its market cache;
markets are read once and refreshed when a read needs current figures.

Units: every amount is in token base units (USDC: 6 decimals, Drift's QUOTE_PRECISION = 1e6).
"""

from __future__ import annotations

import base64
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from anchorpy import Context
from driftpy.account_subscription_config import AccountSubscriptionConfig
from driftpy.accounts.oracle import (
    decode_prelaunch_price_info,
    decode_pyth_price_info,
    decode_pyth_pull_price_info,
    decode_swb_on_demand_price_info,
    decode_swb_price_info,
    is_pyth_legacy_oracle,
    is_pyth_pull_oracle,
)
from driftpy.accounts.types import DataAndSlot
from driftpy.addresses import (
    get_perp_market_public_key,
    get_spot_market_public_key,
    get_spot_market_vault_public_key,
    get_user_account_public_key,
    get_user_stats_account_public_key,
)
from driftpy.constants.numeric_constants import (
    AMM_RESERVE_PRECISION,
    FUNDING_RATE_BUFFER,
    MARGIN_PRECISION,
    PRICE_PRECISION,
    QUOTE_SPOT_MARKET_INDEX,
    SPOT_IMF_PRECISION,
)
from driftpy.drift_client import DriftClient
from driftpy.math.perp_position import calculate_worst_case_base_asset_amount, is_available
from driftpy.math.spot_position import is_spot_position_available
from driftpy.types import UserStatus, is_variant
from solana.rpc.async_api import AsyncClient
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
)

from profitshare.chain.drift.positions import read_positions

__all__ = ["DriftAccountNotFound", "DriftSubaccountState", "DriftpyAdapter"]

#: Spot balances are stored scaled by SPOT_BALANCE_PRECISION (1e9) and multiplied by a cumulative
#: interest index with SPOT_CUMULATIVE_INTEREST_PRECISION (1e10): 19 = 9 + 10 decimal places.
_SPOT_SCALE_DECIMALS = 19
_MULTIPLE_ACCOUNTS_LIMIT = 100  # Solana RPC: keys per getMultipleAccounts
_PREFETCH_SECONDS = 5.0  # a prefetched account serves builds this long (within one batch step)


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


class DriftpyAdapter:
    """Builds Drift instructions with driftpy and reads subaccounts over the gateway's pool.

    ``pool``: the gateway's ``RpcPool`` (anything with ``call(method, *params)`` answering
    JSON-RPC results). ``env``: driftpy's environment name (``"mainnet"`` or ``"devnet"``; both
    use the same Drift program id). Thread-safe: the market cache is guarded by a lock.
    """

    def __init__(self, pool, *, env: str = "mainnet") -> None:
        self.pool = pool
        self._env = env
        self._lock = threading.Lock()
        self._client: DriftClient | None = None
        self._perp: dict[int, DataAndSlot] = {}
        self._spot: dict[int, DataAndSlot] = {}
        self._prefetched: dict[Pubkey, tuple[float, bytes | None]] = {}

    def __repr__(self) -> str:
        return f"DriftpyAdapter(env={self._env!r})"

    # --- public API --------------------------------------------------------------------------

    def build_settle_pnl_instructions(
        self, authority_keypair: Keypair, subaccount_id: int, perp_market_index: int
    ) -> list[Instruction]:
        """Build ``[settlePnl]`` for one perp market of the authority's subaccount.

        One Drift instruction: the IDL accounts (state, user, authority, spotMarketVault of
        USDC) followed by driftpy's remaining accounts (oracles, spot markets, perp markets of
        the user's positions; the settled perp market and the USDC spot market writable). Reads
        the User account (and any market not cached yet). Raises ``ValueError`` for an index
        outside 0..65535, ``DriftAccountNotFound`` if the subaccount or a market does not exist,
        ``RpcUnavailable`` when no endpoint answers.
        """
        _check_u16("subaccount_id", subaccount_id)
        _check_u16("perp_market_index", perp_market_index)
        authority = authority_keypair.pubkey()
        user_key, user = self._user(authority, subaccount_id)
        return [self._settle_ix(authority, user_key, user, perp_market_index)]

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
        _check_withdraw_args(subaccount_id, spot_market_index, amount, reduce_only)
        authority = authority_keypair.pubkey()
        (user_key, user), destination = self._user(authority, subaccount_id, also=[user_token_account])
        return [ix for _, ix in self._withdraw_ixs(
            authority, user_key, user, destination is not None, spot_market_index, amount, reduce_only,
            user_token_account,
        )]

    def build_payout_instructions(
        self,
        authority_keypair: Keypair,
        subaccount_id: int,
        perp_market_index: int | None,
        spot_market_index: int,
        amount: int,
        *,
        user_token_account: Pubkey,
    ) -> list[tuple[str, Instruction]]:
        """The Drift part of an atomic payout, from one read of the User account: ``settle``
        (``settlePnl`` of ``perp_market_index``; left out when None or when the user holds no
        position in that market, which Drift would refuse with ``UserHasNoPositionInMarket``),
        then, when ``amount`` > 0, ``create_agent_ata`` (only when ``user_token_account`` does
        not exist) and a reduce-only ``withdraw`` of ``amount`` base units to it. Returns
        ``[(role, instruction)]``. Raises as ``build_settle_pnl_instructions`` and
        ``build_withdraw_instructions``."""
        _check_withdraw_args(subaccount_id, spot_market_index, amount, True)
        if perp_market_index is not None:
            _check_u16("perp_market_index", perp_market_index)
        authority = authority_keypair.pubkey()
        (user_key, user), destination = self._user(authority, subaccount_id, also=[user_token_account])
        out: list[tuple[str, Instruction]] = []
        if perp_market_index is not None and any(
            p.market_index == perp_market_index and not is_available(p) for p in user.perp_positions
        ):
            out.append(("settle", self._settle_ix(authority, user_key, user, perp_market_index)))
        if amount:
            out += self._withdraw_ixs(
                authority, user_key, user, destination is not None, spot_market_index, amount, True,
                user_token_account,
            )
        return out

    def _settle_ix(self, authority: Pubkey, user_key: Pubkey, user, perp_market_index: int) -> Instruction:
        client = self._markets(user, perp=[perp_market_index])
        remaining = self._remaining_accounts(
            client, user, writable_perp=[perp_market_index], writable_spot=[QUOTE_SPOT_MARKET_INDEX]
        )
        return client.program.instruction["settle_pnl"](
            perp_market_index,
            ctx=Context(
                accounts={
                    "state": client.get_state_public_key(),
                    "authority": authority,
                    "user": user_key,
                    "spot_market_vault": get_spot_market_vault_public_key(
                        client.program_id, QUOTE_SPOT_MARKET_INDEX
                    ),
                },
                remaining_accounts=remaining,
            ),
        )

    def _withdraw_ixs(
        self, authority: Pubkey, user_key: Pubkey, user, destination_exists: bool, spot_market_index: int,
        amount: int, reduce_only: bool, user_token_account: Pubkey,
    ) -> list[tuple[str, Instruction]]:
        client = self._markets(user, spot=[spot_market_index])
        spot_market = client.get_spot_market_account(spot_market_index)
        instructions: list[tuple[str, Instruction]] = []
        if not destination_exists:
            ata = get_associated_token_address(authority, spot_market.mint)
            if user_token_account != ata:
                raise ValueError(
                    f"token account {user_token_account} does not exist and is not the "
                    f"authority's associated token account {ata} for mint {spot_market.mint}"
                )
            instructions.append((
                "create_agent_ata", create_idempotent_associated_token_account(authority, authority, spot_market.mint)
            ))
        remaining = self._remaining_accounts(client, user, writable_spot=[spot_market_index])
        instructions.append((
            "withdraw",
            client.program.instruction["withdraw"](
                spot_market_index,
                amount,
                reduce_only,
                ctx=Context(
                    accounts={
                        "state": client.get_state_public_key(),
                        "spot_market": spot_market.pubkey,
                        "spot_market_vault": spot_market.vault,
                        "drift_signer": client.get_signer_public_key(),
                        "user": user_key,
                        "user_stats": get_user_stats_account_public_key(client.program_id, authority),
                        "user_token_account": user_token_account,
                        "authority": authority,
                        "token_program": TOKEN_PROGRAM_ID,
                    },
                    remaining_accounts=remaining,
                ),
            ),
        ))
        return instructions

    def read_subaccount(self, authority: Pubkey, subaccount_id: int) -> DriftSubaccountState:
        """Read and decode ``authority``'s subaccount and return its USDC figures.

        Reads: the ``User`` account (decoded with driftpy's IDL layouts), then in one round
        spot market 0 (USDC), the perp market of every non-empty perp position, and the oracle
        of every *open* one.
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
        _check_u16("subaccount_id", subaccount_id)
        _, user = self._user(authority, subaccount_id, full=True)
        client = self._markets(user, fresh=True)
        open_positions = [p for p in user.perp_positions if p.base_asset_amount != 0]
        markets = [client.get_perp_market_account(p.market_index) for p in open_positions]
        oracles = self._accounts([m.amm.oracle for m in markets])
        price_by_market = {}
        for position, market, raw in zip(open_positions, markets, oracles, strict=True):
            if is_variant(market.status, "Settlement"):
                price_by_market[position.market_index] = int(market.expiry_price)
                continue
            if raw is None:
                raise DriftAccountNotFound(f"oracle {market.amm.oracle} does not exist")
            price_by_market[position.market_index] = _oracle_price(raw, market.amm.oracle_source)
        return _subaccount_state(client, user, price_by_market)

    def prefetch(self, users: list[tuple[Pubkey, int]], *, also: list[Pubkey] = ()) -> None:
        """Read the ``User`` accounts of ``users`` (authority, subaccount id) and the accounts
        ``also`` (e.g. withdraw destinations) in one ``getMultipleAccounts`` round per 100 keys,
        for the builds of one batch step that follow: each prefetched account serves the next
        build that needs it, once, within a few seconds (a batch of 128 payouts then costs two
        RPC rounds per step instead of 128). Raises ``RpcUnavailable``."""
        client = self._offline_client()
        keys = [get_user_account_public_key(client.program_id, a, s) for a, s in users] + list(also)
        now = time.monotonic()
        fetched = dict(zip(keys, self._accounts(keys), strict=True))
        with self._lock:
            self._prefetched = {k: v for k, v in self._prefetched.items() if now - v[0] < _PREFETCH_SECONDS}
            self._prefetched.update({key: (now, raw) for key, raw in fetched.items()})

    # --- internals -------------------------------------------------------------------------

    def _accounts(self, keys: list[Pubkey], *, prefetched: bool = False) -> list[bytes | None]:
        """Raw data of ``keys`` (None where there is no account), by ``getMultipleAccounts``;
        with ``prefetched``, what ``prefetch`` read recently is used (once) instead."""
        if prefetched:
            now = time.monotonic()
            with self._lock:
                found = [self._prefetched.pop(k, None) for k in keys]
            if all(f is not None and now - f[0] < _PREFETCH_SECONDS for f in found):
                return [f[1] for f in found]
        out: list[bytes | None] = []
        for start in range(0, len(keys), _MULTIPLE_ACCOUNTS_LIMIT):
            chunk = [str(k) for k in keys[start : start + _MULTIPLE_ACCOUNTS_LIMIT]]
            if not chunk:
                continue
            result = self.pool.call(
                "getMultipleAccounts", chunk, {"encoding": "base64", "commitment": "confirmed"}
            )
            out += [
                None if value is None else base64.b64decode(value["data"][0])
                for value in result["value"]
            ]
        return out

    def _offline_client(self) -> DriftClient:
        if self._client is None:
            # No I/O is ever done through this connection: reads go through ``self.pool``.
            self._client = DriftClient(
                AsyncClient("http://127.0.0.1:9"),
                Keypair(),
                env=self._env,
                account_subscription=AccountSubscriptionConfig("cached"),
                perp_market_indexes=[],
                spot_market_indexes=[],
                oracle_infos=[],
            )
        return self._client

    def _user(self, authority: Pubkey, subaccount_id: int, *, also: list[Pubkey] = (), full: bool = False):
        """``(user key, User)``; with ``also``, ``((key, user), *raw data of also)``. The User is
        its positions (``positions.read_positions``, what the builders need) or, with ``full``,
        anchorpy's whole decode (``read_subaccount``)."""
        client = self._offline_client()
        user_key = get_user_account_public_key(client.program_id, authority, subaccount_id)
        raw, *rest = self._accounts([user_key, *also], prefetched=True)
        if raw is None:
            raise DriftAccountNotFound(
                f"Drift user account {user_key} (authority {authority}, subaccount "
                f"{subaccount_id}) does not exist"
            )
        pair = (user_key, client.program.coder.accounts.decode(raw) if full else read_positions(raw))
        return (pair, *rest) if also else pair

    def _markets(self, user, *, perp: Iterable[int] = (), spot: Iterable[int] = (), fresh: bool = False) -> DriftClient:
        """The offline client with every market the user's positions (and ``perp``/``spot``)
        need in its cache; ``fresh`` re-reads them all (current interest and funding)."""
        client = self._offline_client()
        perp_needed = {p.market_index for p in user.perp_positions if not is_available(p)} | set(perp)
        spot_needed = (
            {s.market_index for s in user.spot_positions if not is_spot_position_available(s)}
            | {QUOTE_SPOT_MARKET_INDEX}
            | set(spot)
        )
        with self._lock:
            missing_perp = sorted(perp_needed if fresh else perp_needed - set(self._perp))
            missing_spot = sorted(spot_needed if fresh else spot_needed - set(self._spot))
            if missing_perp or missing_spot:
                keys = [get_perp_market_public_key(client.program_id, i) for i in missing_perp]
                keys += [get_spot_market_public_key(client.program_id, i) for i in missing_spot]
                raws = self._accounts(keys)
                for n, index in enumerate(missing_perp):
                    if raws[n] is None:
                        raise DriftAccountNotFound(f"Drift perp market {index} does not exist")
                    self._perp[index] = DataAndSlot(0, client.program.coder.accounts.decode(raws[n]))
                for n, index in enumerate(missing_spot, start=len(missing_perp)):
                    if raws[n] is None:
                        raise DriftAccountNotFound(f"Drift spot market {index} does not exist")
                    self._spot[index] = DataAndSlot(0, client.program.coder.accounts.decode(raws[n]))
                quote = {m.data.quote_spot_market_index for m in self._perp.values()} - set(self._spot)
                if quote:
                    raws = self._accounts([get_spot_market_public_key(client.program_id, i) for i in sorted(quote)])
                    for index, raw in zip(sorted(quote), raws, strict=True):
                        if raw is None:
                            raise DriftAccountNotFound(f"Drift spot market {index} does not exist")
                        self._spot[index] = DataAndSlot(0, client.program.coder.accounts.decode(raw))
                client.resurrect(dict(self._spot), dict(self._perp), {}, {})
        return client

    @staticmethod
    def _remaining_accounts(client: DriftClient, user, *, writable_perp=(), writable_spot=()):
        """driftpy's remaining accounts for one user (what ``DriftClient.get_remaining_accounts``
        returns for a fresh client): the user's markets, then the writable ones."""
        oracles, spot, perp = client.get_remaining_accounts_for_users([user])
        for index in writable_perp:
            client.add_perp_market_to_remaining_account_maps(index, True, oracles, spot, perp)
        for index in writable_spot:
            client.add_spot_market_to_remaining_account_maps(index, True, oracles, spot)
        return [*oracles.values(), *spot.values(), *perp.values()]


def _oracle_price(raw: bytes, source) -> int:
    """An oracle account's price (PRICE_PRECISION), decoded by driftpy's decoder for ``source``."""
    if is_variant(source, "QuoteAsset"):
        return PRICE_PRECISION
    if is_pyth_pull_oracle(source):
        return int(decode_pyth_pull_price_info(raw, source).price)
    if is_pyth_legacy_oracle(source):
        return int(decode_pyth_price_info(raw, source).price)
    if is_variant(source, "SwitchboardOnDemand"):
        return int(decode_swb_on_demand_price_info(raw).price)
    if is_variant(source, "Switchboard"):
        return int(decode_swb_price_info(raw).price)
    if is_variant(source, "Prelaunch"):
        return int(decode_prelaunch_price_info(raw).price)
    raise DriftAccountNotFound(f"unsupported oracle source {source}")


def _check_withdraw_args(subaccount_id: int, spot_market_index: int, amount: int, reduce_only: bool) -> None:
    _check_u16("subaccount_id", subaccount_id)
    _check_u16("spot_market_index", spot_market_index)
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < 2**64:
        raise ValueError(f"amount must be an int in 0..2**64-1 (base units), got {amount!r}")
    if not isinstance(reduce_only, bool):
        raise ValueError(f"reduce_only must be a bool, got {reduce_only!r}")


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
