"""Drift's world on the local node, built with Drift's own instructions.

At genesis the node's faucet key becomes Drift's admin and runs, as real transactions executed by
the Drift program: ``initialize`` (State, quote asset = the node's USDC mint),
``initialize_spot_market`` (USDC, market 0, quote-asset oracle), ``update_perp_auction_duration(0)``
(the AMM fills market orders at once), and per perp market ``initialize_prelaunch_oracle`` and
``initialize_perp_market`` (Prelaunch oracle, AMM reserves deep enough for real orders).

World building on behalf of an authority the node holds no key for (an agent wallet whose key
lives encrypted in the product's database) runs Drift's real instructions *impersonating* that
authority: the node signs as fee payer and the transaction carries a placeholder signature for the
authority, executed with signature verification off for that one transaction (a test validator's
account-impersonation). Deposits, users, delegates and transfers out are therefore real Drift
transactions, with Drift's events and logs, found by ``getSignaturesForAddress`` of the authority.

Three things cannot come from an instruction and are written directly, at offsets taken from the
binary's IDL (``drift_layout``), keeping Drift's sums: an exact realized PnL
(``realize_pnl``: the position's and the market's quote asset amount, as Drift's
``update_quote_asset_amount`` changes them), a PnL pool's balance (``set_pnl_pool``: the pool, the
USDC market's deposit balance and the vault's tokens together) and the withdraw guard behind
``DailyWithdrawLimit`` (``set_daily_withdraw_limit``). ``check_invariants`` verifies those sums.

Amounts are USDC base units (6 decimals); prices are in Drift's PRICE_PRECISION (1e6 per USDC).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from anchorpy import Context
from driftpy.constants.numeric_constants import (
    AMM_RESERVE_PRECISION,
    PEG_PRECISION,
    PRICE_PRECISION,
)
from driftpy.types import ContractTier, OracleSource, PrelaunchOracleParams
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import CreateAccountParams, create_account
from solders.sysvar import RENT
from solders.token.state import Mint
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    CloseAccountParams,
    InitializeAccountParams,
    MintToCheckedParams,
    close_account,
    initialize_account,
    mint_to_checked,
)

from profitshare.localnet import drift_layout as layout
from profitshare.localnet import drift_program as dp
from profitshare.localnet.ledger import TOKEN_ACCOUNT_LEN, Ledger, TxRecord

#: Drift's spot balances: token = scaled × cumulative interest / 10^(19 − decimals).
SPOT_BALANCE_SCALE_DECIMALS = 19
#: Withdraw guard threshold of the USDC market by default: high enough that Drift's daily
#: withdraw limit never binds (Drift: limits apply only to markets above the threshold).
UNLIMITED_WITHDRAW_GUARD = 10**18
USER_ACCOUNT_LEN = layout.size_of({"defined": "User"}) + 8
PERP_POSITIONS = 8


@dataclass(frozen=True)
class PerpMarketSpec:
    """A perp market of the node: ``index``, ``name``, oracle ``price`` (PRICE_PRECISION) and
    AMM ``base_reserve`` (in whole base units; quote reserve is equal, peg = price)."""

    index: int
    name: str
    price: int
    base_reserve: int = 100_000


DEFAULT_PERP_MARKETS = (
    PerpMarketSpec(0, "SOL-PERP", 150 * PRICE_PRECISION),
    PerpMarketSpec(1, "BTC-PERP", 60_000 * PRICE_PRECISION, base_reserve=10_000),
    PerpMarketSpec(2, "ETH-PERP", 3_000 * PRICE_PRECISION, base_reserve=50_000),
)


class DriftWorldError(ValueError):
    """World building was asked something Drift would refuse (the message says what)."""


class DriftWorld:
    """The Drift program's accounts on one ledger, and the node's ways of shaping them.

    ``execute(instructions, signers, impersonate)`` is the node's transaction runner (signs with
    the faucet as fee payer, lands the transaction, raises ``TransactionRejected`` on failure).
    """

    def __init__(self, ledger: Ledger, usdc_mint: Pubkey, admin: Keypair, execute) -> None:
        self.ledger = ledger
        self.usdc_mint = usdc_mint
        self.admin = admin
        self._execute = execute
        self.perp_markets: tuple[PerpMarketSpec, ...] = ()
        self.daily_withdraw_limit: int | None = None

    # --- genesis -----------------------------------------------------------------------------
    def genesis(self, pnl_pool: int, markets: tuple[PerpMarketSpec, ...] = DEFAULT_PERP_MARKETS) -> None:
        """Create State, the USDC spot market and ``markets`` with real admin instructions, then
        fund every perp market's PnL pool with ``pnl_pool`` base units."""
        ix = dp.program().instruction
        admin = self.admin.pubkey()
        self._execute(
            [
                ix["initialize"](
                    ctx=Context(
                        accounts={
                            "admin": admin,
                            "state": dp.state_pda(),
                            "quote_asset_mint": self.usdc_mint,
                            "drift_signer": dp.signer_pda(),
                            "rent": RENT,
                            "system_program": SYSTEM_PROGRAM_ID,
                            "token_program": TOKEN_PROGRAM_ID,
                        }
                    )
                )
            ]
        )
        self._execute(
            [
                ix["initialize_spot_market"](
                    500_000, 1_000_000, 1_000_000,  # optimal utilization, optimal/max borrow rate
                    OracleSource.QuoteAsset(),
                    10_000, 10_000, 10_000, 10_000,  # asset / liability weights: 1.0
                    0, 0, 0,  # imf factor, liquidator fee, insurance fund liquidation fee
                    True,  # active
                    _asset_tier_collateral(),
                    0,  # scale initial asset weight start
                    UNLIMITED_WITHDRAW_GUARD,
                    1, 1,  # order tick size, order step size
                    0,  # insurance fund total factor
                    _name("USDC"),
                    ctx=Context(
                        accounts={
                            "spot_market": dp.spot_market_pda(0),
                            "spot_market_mint": self.usdc_mint,
                            "spot_market_vault": dp.spot_vault_pda(0),
                            "insurance_fund_vault": dp.insurance_vault_pda(0),
                            "drift_signer": dp.signer_pda(),
                            "state": dp.state_pda(),
                            "oracle": Pubkey.default(),
                            "admin": admin,
                            "rent": RENT,
                            "system_program": SYSTEM_PROGRAM_ID,
                            "token_program": TOKEN_PROGRAM_ID,
                        }
                    ),
                ),
                ix["update_perp_auction_duration"](
                    0, ctx=Context(accounts={"admin": admin, "state": dp.state_pda()})
                ),
            ]
        )
        for spec in markets:
            self._add_perp_market(spec)
        self.perp_markets = tuple(markets)
        for spec in markets:
            self.set_pnl_pool(spec.index, pnl_pool)

    def _add_perp_market(self, spec: PerpMarketSpec) -> None:
        ix = dp.program().instruction
        admin = self.admin.pubkey()
        oracle = dp.prelaunch_oracle_pda(spec.index)
        reserve = spec.base_reserve * AMM_RESERVE_PRECISION
        self._execute(
            [
                ix["initialize_prelaunch_oracle"](
                    PrelaunchOracleParams(spec.index, spec.price, spec.price * 100),
                    ctx=Context(
                        accounts={
                            "admin": admin,
                            "prelaunch_oracle": oracle,
                            "state": dp.state_pda(),
                            "rent": RENT,
                            "system_program": SYSTEM_PROGRAM_ID,
                        }
                    ),
                ),
                ix["initialize_perp_market"](
                    spec.index, reserve, reserve, 3600,
                    spec.price * PEG_PRECISION // PRICE_PRECISION,
                    OracleSource.Prelaunch(), ContractTier.Speculative(),
                    2000, 500,  # initial / maintenance margin ratio (driftpy's defaults)
                    0, 10_000, 0,  # liquidator fee, insurance fund liquidation fee, imf factor
                    True,  # active
                    0, 142_500,  # base spread, max spread (driftpy's defaults)
                    0, 0, 0,  # max open interest, max revenue withdraw, quote max insurance
                    AMM_RESERVE_PRECISION // 10_000,  # order step size
                    PRICE_PRECISION // 100_000,  # order tick size
                    AMM_RESERVE_PRECISION // 10_000,  # min order size
                    1, 0, 0,  # concentration scale, curve update intensity, AMM JIT intensity
                    _name(spec.name),
                    ctx=Context(
                        accounts={
                            "admin": admin,
                            "state": dp.state_pda(),
                            "perp_market": dp.perp_market_pda(spec.index),
                            "oracle": oracle,
                            "rent": RENT,
                            "system_program": SYSTEM_PROGRAM_ID,
                        }
                    ),
                ),
            ]
        )

    # --- reads -------------------------------------------------------------------------------
    def _data(self, pubkey: Pubkey) -> bytes | None:
        account = self.ledger.get_account(pubkey)
        return None if account is None else bytes(account.data)

    def user(self, authority: Pubkey, subaccount_id: int):
        """The decoded ``User`` of (authority, subaccount id), or None."""
        data = self._data(dp.user_pda(authority, subaccount_id))
        return None if data is None else dp.decode(data)

    def spot_market(self):
        return dp.decode(self._data(dp.spot_market_pda(0)))

    def perp_market(self, index: int):
        data = self._data(dp.perp_market_pda(index))
        if data is None:
            raise DriftWorldError(f"the node has no perp market {index}")
        return dp.decode(data)

    def oracle_price(self, index: int) -> int:
        """The Prelaunch oracle price of perp market ``index`` (PRICE_PRECISION)."""
        return dp.decode(self._data(dp.prelaunch_oracle_pda(index))).price

    def deposit_amount(self, scaled: int, *, borrow: bool = False) -> int:
        """Token amount (base units) of a USDC-market scaled balance, rounded as Drift does."""
        market = self.spot_market()
        scale = 10 ** (SPOT_BALANCE_SCALE_DECIMALS - market.decimals)
        if borrow:
            return -((-scaled * market.cumulative_borrow_interest) // scale)
        return scaled * market.cumulative_deposit_interest // scale

    def _scaled_for(self, amount: int) -> int:
        """The smallest deposit scaled balance whose token amount is ``amount`` base units."""
        market = self.spot_market()
        scale = 10 ** (SPOT_BALANCE_SCALE_DECIMALS - market.decimals)
        scaled = -((-amount * scale) // market.cumulative_deposit_interest)
        while scaled * market.cumulative_deposit_interest // scale > amount:
            scaled -= 1
        return scaled

    def account_json(self, authority: Pubkey, subaccount_id: int) -> dict[str, Any] | None:
        """The ``localnet_driftAccount`` answer, from Drift's own ``User`` account.

        ``collateral``: the USDC spot balance (base units, negative when borrowed);
        ``unsettledPnl``: Σ over perp positions of quote asset amount + base × oracle price (the
        realized but unsettled PnL of closed positions plus open positions' PnL);
        ``withdrawable``: collateral less any unsettled loss, at least 0 (an open position's
        margin is Drift's to enforce); ``settledPnl``: Drift's ``settled_perp_pnl``.
        """
        user = self.user(authority, subaccount_id)
        if user is None:
            return None
        collateral = 0
        for position in user.spot_positions:
            if position.market_index == 0 and position.scaled_balance:
                borrow = "Borrow" in type(position.balance_type).__name__
                collateral = self.deposit_amount(position.scaled_balance, borrow=borrow)
        unsettled = 0
        positions = []
        for position in user.perp_positions:
            if _position_empty(position):
                continue
            pnl = position.quote_asset_amount
            if position.base_asset_amount:
                pnl += position.base_asset_amount * self.oracle_price(position.market_index) // AMM_RESERVE_PRECISION
            unsettled += pnl
            positions.append(
                {
                    "marketIndex": position.market_index,
                    "baseAssetAmount": position.base_asset_amount,
                    "quoteAssetAmount": position.quote_asset_amount,
                    "unsettledPnl": pnl,
                }
            )
        delegate = None if user.delegate == Pubkey.default() else str(user.delegate)
        return {
            "authority": str(authority),
            "subaccountId": subaccount_id,
            "user": str(dp.user_pda(authority, subaccount_id)),
            "collateral": collateral,
            "unsettledPnl": unsettled,
            "settledPnl": user.settled_perp_pnl,
            "withdrawable": max(0, collateral + min(0, unsettled)),
            "delegate": delegate,
            "perpPositions": positions,
        }

    # --- world building: real instructions ----------------------------------------------------
    def ensure_user(self, authority: Pubkey, subaccount_id: int) -> None:
        """Give ``authority`` Drift's ``UserStats`` and the ``User`` subaccounts up to
        ``subaccount_id`` (Drift creates subaccounts in order), by real instructions."""
        ix = dp.program().instruction
        payer = self.admin.pubkey()
        instructions = []
        stats = dp.user_stats_pda(authority)
        created = 0
        if self.ledger.get_account(stats) is None:
            instructions.append(
                ix["initialize_user_stats"](
                    ctx=Context(
                        accounts={
                            "user_stats": stats,
                            "state": dp.state_pda(),
                            "authority": authority,
                            "payer": payer,
                            "rent": RENT,
                            "system_program": SYSTEM_PROGRAM_ID,
                        }
                    )
                )
            )
        else:
            created = dp.decode(self._data(stats)).number_of_sub_accounts_created
        for sub in range(created, subaccount_id + 1):
            instructions.append(
                ix["initialize_user"](
                    sub,
                    _name("Main Account" if sub == 0 else f"Subaccount {sub}"),
                    ctx=Context(
                        accounts={
                            "user": dp.user_pda(authority, sub),
                            "user_stats": stats,
                            "state": dp.state_pda(),
                            "authority": authority,
                            "payer": payer,
                            "rent": RENT,
                            "system_program": SYSTEM_PROGRAM_ID,
                        }
                    ),
                )
            )
        if instructions:
            self._execute(instructions, impersonate=[authority])

    def deposit(self, authority: Pubkey, subaccount_id: int, amount: int) -> TxRecord:
        """Deposit ``amount`` USDC base units into the subaccount (created when missing) with
        Drift's ``deposit``: the USDC is minted into a throwaway token account of the authority
        (not its ATA, so the agent's own token account is untouched), deposited, and the
        throwaway account closed, all in one transaction."""
        self.ensure_user(authority, subaccount_id)
        source = Keypair()
        rent = self.ledger.svm.minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_LEN)
        payer = self.admin.pubkey()
        user = self.user(authority, subaccount_id)
        deposit_ix = dp.program().instruction["deposit"](
            0, amount, False,
            ctx=Context(
                accounts=_token_accounts(authority, subaccount_id, source.pubkey()),
                remaining_accounts=self.remaining_accounts(user, writable_spot=(0,)),
            ),
        )
        return self._execute(
            [
                create_account(
                    CreateAccountParams(
                        from_pubkey=payer, to_pubkey=source.pubkey(), lamports=rent,
                        space=TOKEN_ACCOUNT_LEN, owner=TOKEN_PROGRAM_ID,
                    )
                ),
                initialize_account(
                    InitializeAccountParams(
                        program_id=TOKEN_PROGRAM_ID, account=source.pubkey(),
                        mint=self.usdc_mint, owner=authority,
                    )
                ),
                mint_to_checked(
                    MintToCheckedParams(
                        program_id=TOKEN_PROGRAM_ID, mint=self.usdc_mint, dest=source.pubkey(),
                        mint_authority=payer, amount=amount, decimals=6,
                    )
                ),
                deposit_ix,
                close_account(
                    CloseAccountParams(
                        program_id=TOKEN_PROGRAM_ID, account=source.pubkey(), dest=payer, owner=authority
                    )
                ),
            ],
            signers=[source],
            impersonate=[authority],
        )

    def set_delegate(self, authority: Pubkey, subaccount_id: int, delegate: Pubkey | None) -> TxRecord:
        """Drift's ``update_user_delegate`` (None clears it), creating the subaccount if missing."""
        self.ensure_user(authority, subaccount_id)
        return self._execute(
            [
                dp.program().instruction["update_user_delegate"](
                    subaccount_id, delegate or Pubkey.default(),
                    ctx=Context(
                        accounts={"user": dp.user_pda(authority, subaccount_id), "authority": authority}
                    ),
                )
            ],
            impersonate=[authority],
        )

    def transfer_out(
        self, authority: Pubkey, subaccount_id: int, amount: int, destination: Pubkey
    ) -> TxRecord:
        """The authority withdraws ``amount`` (reduce-only: Drift clamps it to the deposit) to the
        token account ``destination`` behind the platform's back: a real Drift ``withdraw``
        signed as the authority (what a subscriber holding the agent key could do)."""
        user = self.user(authority, subaccount_id)
        if user is None:
            raise DriftWorldError(f"no Drift subaccount {subaccount_id} for {authority}")
        return self._execute(
            [self.withdraw_ix(authority, subaccount_id, amount, destination, user)],
            impersonate=[authority],
        )

    def withdraw_ix(self, authority: Pubkey, subaccount_id: int, amount: int, destination: Pubkey, user) -> Instruction:
        """Drift's ``withdraw`` (USDC, reduce-only) of ``amount`` to ``destination``."""
        return dp.program().instruction["withdraw"](
            0, amount, True,
            ctx=Context(
                accounts={**_token_accounts(authority, subaccount_id, destination), "drift_signer": dp.signer_pda()},
                remaining_accounts=self.remaining_accounts(user, writable_spot=(0,)),
            ),
        )

    def set_oracle_price(self, index: int, price: int) -> TxRecord:
        """Drift's ``update_prelaunch_oracle_params``: perp market ``index``'s oracle price
        becomes ``price`` (PRICE_PRECISION, 1e6 per USDC; > 0)."""
        if price <= 0:
            raise DriftWorldError("price must be > 0 (PRICE_PRECISION, 1e6 per USDC)")
        self.perp_market(index)
        return self._execute(
            [
                dp.program().instruction["update_prelaunch_oracle_params"](
                    PrelaunchOracleParams(index, price, max(price * 100, self.oracle_price(index) * 100)),
                    ctx=Context(
                        accounts={
                            "admin": self.admin.pubkey(),
                            "prelaunch_oracle": dp.prelaunch_oracle_pda(index),
                            "perp_market": dp.perp_market_pda(index),
                            "state": dp.state_pda(),
                        }
                    ),
                )
            ]
        )

    @staticmethod
    def remaining_accounts(user, *, writable_spot=(), writable_perp=()) -> list[AccountMeta]:
        """See ``drift_program.remaining_accounts``."""
        return dp.remaining_accounts(user, writable_spot=writable_spot, writable_perp=writable_perp)

    # --- world building: direct writes --------------------------------------------------------
    def realize_pnl(self, authority: Pubkey, subaccount_id: int, pnl: int, market_index: int = 0) -> None:
        """Give the subaccount exactly ``pnl`` base units (signed) of realized, unsettled PnL in
        perp market ``market_index``: a closed position's quote asset amount, written as Drift's
        ``update_quote_asset_amount`` writes it (the position's and the market's quote asset
        amount, and the market's user count). Drift's own ``settle_pnl`` then settles it from
        (or into) the market's PnL pool."""
        self.perp_market(market_index)
        self.ensure_user(authority, subaccount_id)
        user_key = dp.user_pda(authority, subaccount_id)
        data = bytearray(self._data(user_key))
        user = dp.decode(bytes(data))
        slot = next((n for n, p in enumerate(user.perp_positions) if p.market_index == market_index and not _position_empty(p)), None)
        if slot is None:
            slot = next((n for n, p in enumerate(user.perp_positions) if _position_empty(p)), None)
            if slot is None:
                raise DriftWorldError("the subaccount has no free perp position (Drift allows 8)")
            layout.write_int(data, "User", f"perp_positions[{slot}].market_index", market_index)
        path = f"perp_positions[{slot}]"
        before = layout.read_int(data, "User", f"{path}.quote_asset_amount")
        base = layout.read_int(data, "User", f"{path}.base_asset_amount")
        layout.write_int(data, "User", f"{path}.quote_asset_amount", before + pnl)
        self._write(user_key, data)
        market_key = dp.perp_market_pda(market_index)
        market = bytearray(self._data(market_key))
        quote = layout.read_int(market, "PerpMarket", "amm.quote_asset_amount")
        layout.write_int(market, "PerpMarket", "amm.quote_asset_amount", quote + pnl)
        users = layout.read_int(market, "PerpMarket", "number_of_users")
        if before == 0 and base == 0 and pnl != 0:
            users += 1
        elif before + pnl == 0 and base == 0 and before != 0:
            users = max(0, users - 1)
        layout.write_int(market, "PerpMarket", "number_of_users", users)
        self._write(market_key, market)

    def set_pnl_pool(self, market_index: int, amount: int) -> None:
        """Make perp market ``market_index``'s PnL pool hold ``amount`` base units: the pool's
        scaled balance, the USDC market's deposit balance and the vault's tokens (minted or
        burned, the mint's supply with them) move together."""
        if amount < 0:
            raise DriftWorldError("pnlPool must be >= 0")
        market_key = dp.perp_market_pda(market_index)
        market = bytearray(self._data(market_key))
        current = layout.read_int(market, "PerpMarket", "pnl_pool.scaled_balance")
        scaled = self._scaled_for(amount)
        layout.write_int(market, "PerpMarket", "pnl_pool.scaled_balance", scaled)
        self._write(market_key, market)
        self._move_deposits(scaled - current, amount - self.deposit_amount(current))

    def pnl_pool(self, market_index: int) -> int:
        """Base units in perp market ``market_index``'s PnL pool."""
        return self.deposit_amount(self.perp_market(market_index).pnl_pool.scaled_balance)

    def lower_deposit(self, authority: Pubkey, subaccount_id: int, amount: int) -> tuple[int, int] | None:
        """Set the subaccount's USDC deposit aside down to ``amount`` base units if it holds more
        (the difference leaves the deposit balance and the vault together): what makes Drift's
        reduce-only withdraw deliver less than asked, for the ``partialWithdrawRatio`` fault.
        Returns ``(scaled, tokens)`` set aside, for ``restore_deposit``; None if nothing was."""
        user_key = dp.user_pda(authority, subaccount_id)
        data = self._data(user_key)
        if data is None:
            return None
        data = bytearray(data)
        n = self._quote_deposit_slot(dp.decode(bytes(data)))
        if n is None:
            return None
        current = layout.read_int(data, "User", f"spot_positions[{n}].scaled_balance")
        held = self.deposit_amount(current)
        if held <= amount:
            return None
        scaled = self._scaled_for(amount)
        layout.write_int(data, "User", f"spot_positions[{n}].scaled_balance", scaled)
        self._write(user_key, data)
        self._move_deposits(scaled - current, amount - held)
        return current - scaled, held - amount

    def restore_deposit(self, authority: Pubkey, subaccount_id: int, aside: tuple[int, int]) -> None:
        """Give back what ``lower_deposit`` set aside (after the withdraw ran)."""
        scaled, tokens = aside
        user_key = dp.user_pda(authority, subaccount_id)
        data = bytearray(self._data(user_key))
        n = self._quote_deposit_slot(dp.decode(bytes(data)), allow_empty=True)
        path = f"spot_positions[{n}]"
        layout.write_int(data, "User", f"{path}.scaled_balance", layout.read_int(data, "User", f"{path}.scaled_balance") + scaled)
        layout.write_int(data, "User", f"{path}.market_index", 0)
        self._write(user_key, data)
        self._move_deposits(scaled, tokens)

    @staticmethod
    def _quote_deposit_slot(user, *, allow_empty: bool = False) -> int | None:
        for n, position in enumerate(user.spot_positions):
            if position.market_index != 0 or "Borrow" in type(position.balance_type).__name__:
                continue
            if position.scaled_balance or allow_empty:
                return n
        return None

    def set_daily_withdraw_limit(self, limit: int | None) -> None:
        """Drift's withdraw guard on the USDC market: with ``limit`` L, a withdraw that would take
        the market's deposits more than L below today's level fails with ``DailyWithdrawLimit``
        (Drift keeps deposits above 75 % of their 24-hour TWAP once the guard threshold is 0;
        the TWAP is set so that 75 % of it is today's deposits less L). None lifts the guard."""
        key = dp.spot_market_pda(0)
        data = bytearray(self._data(key))
        if limit is None:
            layout.write_int(data, "SpotMarket", "withdraw_guard_threshold", UNLIMITED_WITHDRAW_GUARD)
        else:
            deposits = self.deposit_amount(layout.read_int(data, "SpotMarket", "deposit_balance"))
            floor = max(0, deposits - limit)
            twap = (floor * 4 + 2) // 3
            while twap - twap // 4 < floor:
                twap += 1
            while twap > 0 and twap - 1 - (twap - 1) // 4 >= floor:
                twap -= 1
            layout.write_int(data, "SpotMarket", "withdraw_guard_threshold", 0)
            layout.write_int(data, "SpotMarket", "deposit_token_twap", twap)
            layout.write_int(data, "SpotMarket", "last_twap_ts", self.ledger.block_time)
        self._write(key, data)
        self.daily_withdraw_limit = limit

    def _move_deposits(self, scaled_delta: int, token_delta: int) -> None:
        key = dp.spot_market_pda(0)
        data = bytearray(self._data(key))
        balance = layout.read_int(data, "SpotMarket", "deposit_balance")
        layout.write_int(data, "SpotMarket", "deposit_balance", balance + scaled_delta)
        self._write(key, data)
        if token_delta:
            vault = dp.spot_vault_pda(0)
            state = self.ledger.token_account(vault)
            self.ledger.write_token_account(
                vault, mint=state.mint, owner=state.owner, amount=state.amount + token_delta
            )
            mint_account = self.ledger.get_account(self.usdc_mint)
            mint = Mint.from_bytes(bytes(mint_account.data))
            updated = Mint(
                mint_authority=mint.mint_authority, supply=mint.supply + token_delta,
                decimals=mint.decimals, is_initialized=True, freeze_authority=mint.freeze_authority,
            )
            self.ledger.set_account(
                self.usdc_mint,
                Account(lamports=mint_account.lamports, data=bytes(updated), owner=mint_account.owner),
            )

    def _write(self, pubkey: Pubkey, data: bytearray) -> None:
        account = self.ledger.get_account(pubkey)
        self.ledger.set_account(
            pubkey, Account(lamports=account.lamports, data=bytes(data), owner=account.owner)
        )

    # --- self-check --------------------------------------------------------------------------
    def users(self) -> list[tuple[Pubkey, UserPositions]]:
        """Every Drift ``User`` account the ledger knows, as its positions read at IDL offsets
        (``user_positions``: microseconds, where anchorpy's full decode takes ~10 ms a user)."""
        found = []
        for key in list(self.ledger.owned_by(dp.DRIFT_PROGRAM_ID)):
            account = self.ledger.get_account(key)
            if account is not None and account.owner == dp.DRIFT_PROGRAM_ID and len(account.data) == USER_ACCOUNT_LEN:
                found.append((key, user_positions(bytes(account.data))))
        return found

    def check_invariants(self) -> None:
        """Verify the sums Drift keeps, after world building; raises ``AssertionError`` naming
        the first one that does not hold:

        * the USDC market's deposit balance = Σ users' deposits + Σ perp markets' PnL and fee
          pools + the market's revenue and fee pools (scaled balances);
        * the vault's tokens cover deposits less borrows (Drift's vault check);
        * per perp market, the AMM's quote asset amount = Σ users' quote asset amounts there,
          and its user count = the users with a non-empty position there.
        """
        spot = self.spot_market()
        users = self.users()
        deposits = borrows = 0
        for _, user in users:
            for position in user.spot_positions:
                if position.market_index == 0 and position.scaled_balance:
                    if position.borrow:
                        borrows += position.scaled_balance
                    else:
                        deposits += position.scaled_balance
        pools = spot.revenue_pool.scaled_balance + spot.spot_fee_pool.scaled_balance
        for spec in self.perp_markets:
            market = self.perp_market(spec.index)
            pools += market.pnl_pool.scaled_balance + market.amm.fee_pool.scaled_balance
            quote = sum(
                p.quote_asset_amount for _, u in users for p in u.perp_positions
                if p.market_index == spec.index and not _position_empty(p)
            )
            holders = sum(
                1 for _, u in users for p in u.perp_positions
                if p.market_index == spec.index and not _position_empty(p)
            )
            assert market.amm.quote_asset_amount == quote, (
                f"perp market {spec.index}: AMM quote asset amount {market.amm.quote_asset_amount} != Σ users' {quote}"
            )
            assert market.number_of_users == holders, (
                f"perp market {spec.index}: number_of_users {market.number_of_users} != {holders} holders"
            )
        assert spot.deposit_balance == deposits + pools, (
            f"USDC market deposit balance {spot.deposit_balance} != users {deposits} + pools {pools}"
        )
        assert spot.borrow_balance == borrows, f"USDC market borrow balance {spot.borrow_balance} != users {borrows}"
        vault = self.ledger.token_account(dp.spot_vault_pda(0)).amount
        owed = self.deposit_amount(spot.deposit_balance) - self.deposit_amount(spot.borrow_balance, borrow=True)
        assert vault >= owed, f"vault holds {vault} < deposits less borrows {owed}"

    # --- transactions the node inspects -------------------------------------------------------
    def withdraws_in(self, message) -> list[tuple[Pubkey, int]]:
        """``(user account, amount)`` of every Drift ``withdraw`` in a transaction message."""
        keys = list(message.account_keys)
        found = []
        for ix in message.instructions:
            if keys[ix.program_id_index] != dp.DRIFT_PROGRAM_ID:
                continue
            data = bytes(ix.data)
            if data[:8] != _discriminator("withdraw") or len(data) < 19:
                continue
            accounts = bytes(ix.accounts)
            found.append((keys[accounts[1]], int.from_bytes(data[10:18], "little")))
        return found

    def settles_in(self, message) -> list[tuple[Pubkey, int]]:
        """``(user account, perp market index)`` of every Drift ``settle_pnl`` in a message."""
        keys = list(message.account_keys)
        found = []
        for ix in message.instructions:
            data = bytes(ix.data)
            if keys[ix.program_id_index] != dp.DRIFT_PROGRAM_ID or data[:8] != _discriminator("settle_pnl"):
                continue
            found.append((keys[bytes(ix.accounts)[1]], int.from_bytes(data[8:10], "little")))
        return found

    def lower_pnl_pool(self, market_index: int, amount: int) -> int:
        """Set perp market ``market_index``'s PnL pool aside down to ``amount`` base units if it
        holds more, so a ``settle_pnl`` settles at most that much; returns the base units set
        aside (0: none), for ``restore_pnl_pool``."""
        held = self.pnl_pool(market_index)
        if held <= amount:
            return 0
        self.set_pnl_pool(market_index, amount)
        return held - amount

    def restore_pnl_pool(self, market_index: int, aside: int) -> None:
        """Give back what ``lower_pnl_pool`` set aside."""
        if aside:
            self.set_pnl_pool(market_index, self.pnl_pool(market_index) + aside)

    def authority_of(self, user_key: Pubkey) -> tuple[Pubkey, int] | None:
        data = self._data(user_key)
        if data is None or len(data) != USER_ACCOUNT_LEN:
            return None
        user = dp.decode(data)
        return user.authority, user.sub_account_id


_position_empty = dp.position_empty


def _token_accounts(authority: Pubkey, subaccount_id: int, token_account: Pubkey) -> dict[str, Pubkey]:
    """The accounts Drift's ``deposit`` and ``withdraw`` share (USDC market 0)."""
    return {
        "state": dp.state_pda(),
        "user": dp.user_pda(authority, subaccount_id),
        "user_stats": dp.user_stats_pda(authority),
        "authority": authority,
        "spot_market_vault": dp.spot_vault_pda(0),
        "user_token_account": token_account,
        "token_program": TOKEN_PROGRAM_ID,
    }


@dataclass(frozen=True)
class SpotPositionBalance:
    """A user's spot position as the self-check reads it: ``market_index``, ``scaled_balance``
    (Drift's scaled units), ``borrow`` (a borrow, else a deposit)."""

    market_index: int
    scaled_balance: int
    borrow: bool


@dataclass(frozen=True)
class PerpPositionAmounts:
    """A user's perp position as the self-check reads it (Drift's units)."""

    market_index: int
    base_asset_amount: int
    quote_asset_amount: int
    open_orders: int
    lp_shares: int


@dataclass(frozen=True)
class UserPositions:
    """The 8 spot and 8 perp positions of a ``User`` account."""

    spot_positions: tuple[SpotPositionBalance, ...]
    perp_positions: tuple[PerpPositionAmounts, ...]


def user_positions(data: bytes) -> UserPositions:
    """Read a ``User`` account's positions at the offsets of the binary's IDL."""
    spot = []
    for n in range(8):
        path = f"spot_positions[{n}]"
        tag_offset, _ = layout.field("User", f"{path}.balance_type")
        spot.append(SpotPositionBalance(
            layout.read_int(data, "User", f"{path}.market_index"),
            layout.read_int(data, "User", f"{path}.scaled_balance"),
            data[tag_offset] == 1,  # SpotBalanceType: Deposit = 0, Borrow = 1
        ))
    perp = tuple(
        PerpPositionAmounts(*(layout.read_int(data, "User", f"perp_positions[{n}].{name}") for name in (
            "market_index", "base_asset_amount", "quote_asset_amount", "open_orders", "lp_shares")))
        for n in range(PERP_POSITIONS)
    )
    return UserPositions(tuple(spot), perp)


def _name(text: str) -> list[int]:
    raw = text.encode()[:32]
    return list(raw + b" " * (32 - len(raw)))


def _asset_tier_collateral():
    from driftpy.types import AssetTier

    return AssetTier.COLLATERAL()


def _discriminator(name: str) -> bytes:
    import hashlib

    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


def placeholder_signature() -> bytes:
    """64 random bytes standing in for an impersonated signer's signature."""
    return secrets.token_bytes(64)
