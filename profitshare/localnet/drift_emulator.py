"""An emulated Drift program on the local node (the Drift binary cannot run offline).

What is emulated, per (authority, subaccount id) — the Drift ``User`` account at its real PDA:
a USDC collateral balance, an unsettled PnL and the cumulative settled PnL. All collateral and
the PnL pool are backed by real USDC in one real SPL token account on the SVM, the USDC spot
market vault at Drift's PDA (``["spot_market_vault", 0]``), owned by the Drift signer PDA.

Transactions carrying Drift ``settlePnl`` / ``withdraw`` instructions (built from driftpy's IDL by
``profitshare.chain.drift.program``) are sent with ordinary ``sendTransaction``; the node decodes
them and applies these rules (Drift's own, simplified):

* only the authority's signature moves funds (``withdraw``); ``settlePnl`` also accepts the
  subaccount's delegate;
* ``settlePnl`` moves unsettled PnL into collateral. A profit is paid from the PnL pool and fails
  with ``PnlPoolCantSettleUser`` when the pool cannot pay; a loss is taken from collateral into
  the pool. Nothing unsettled: a successful no-op;
* ``withdraw`` moves real tokens from the vault to the given USDC token account (which must exist;
  an idempotent ATA-create instruction before it in the same transaction is honoured).
  Withdrawable = collateral less any unsettled loss. ``reduceOnly`` clamps the amount to what is
  withdrawable; otherwise asking for more fails with ``InsufficientCollateral``; nothing
  withdrawable fails with ``InsufficientCollateral`` either way; a configured daily withdraw limit
  fails with ``DailyWithdrawLimit``; the ``partialWithdrawRatio`` fault delivers only part;
* failures land with ``err = {"InstructionError": [i, {"Custom": <Drift error code>}]}`` and the
  fee charged, or are refused by preflight, as a validator would.

Compute-budget instructions are accepted as no-ops; any other program in a Drift transaction is
refused (``IncorrectProgramId``), since the emulator cannot run it atomically with the SVM.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.state import Mint
from solders.transaction import VersionedTransaction
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID

from profitshare.chain.drift import program
from profitshare.localnet.ledger import (
    TOKEN_ACCOUNT_LEN,
    Ledger,
    Outcome,
    TxRecord,
)

COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
SECONDS_PER_DAY = 86_400
ANCHOR_ACCOUNT_NOT_INITIALIZED = 3012
ANCHOR_FALLBACK_NOT_FOUND = 101
ANCHOR_CONSTRAINT_SIGNER = 2002
EMULATED_UNITS = 25_000


class DriftEmulationError(Exception):
    """An instruction failed: ``inner`` is the InstructionError's inner JSON (e.g. {"Custom": n})."""

    def __init__(self, inner: Any, log: str) -> None:
        super().__init__(log)
        self.inner = inner
        self.log = log


def _custom(name: str, why: str) -> DriftEmulationError:
    return DriftEmulationError({"Custom": program.error_code(name)}, f"{name}: {why}")


@dataclass
class Subaccount:
    """An emulated Drift ``User``. Amounts are USDC base units (6 decimals)."""

    authority: str
    subaccount_id: int
    user: str
    collateral: int = 0
    unsettled_pnl: int = 0
    settled_pnl: int = 0
    delegate: str | None = None
    withdrawals: list[tuple[int, int]] = field(default_factory=list)  # (unix time, amount)

    @property
    def withdrawable(self) -> int:
        """Collateral less any unsettled loss (an unsettled profit is not withdrawable)."""
        return max(0, self.collateral + min(0, self.unsettled_pnl))

    def to_json(self) -> dict[str, Any]:
        """The ``localnet_driftAccount`` answer."""
        return {
            "authority": self.authority,
            "subaccountId": self.subaccount_id,
            "user": self.user,
            "collateral": self.collateral,
            "unsettledPnl": self.unsettled_pnl,
            "settledPnl": self.settled_pnl,
            "withdrawable": self.withdrawable,
            "delegate": self.delegate,
        }


class DriftEmulator:
    """Emulated Drift subaccounts over one real USDC vault token account on the ledger."""

    def __init__(self, ledger: Ledger, usdc_mint: Pubkey, faults) -> None:
        self.ledger = ledger
        self.usdc_mint = usdc_mint
        self.faults = faults
        self.subaccounts: dict[str, Subaccount] = {}
        self.pnl_pool = 0
        self.daily_withdraw_limit: int | None = None
        self.vault = program.spot_market_vault_pda(0)
        self.signer = program.drift_signer_pda()

    # --- world building (localnet_ methods) --------------------------------------------------
    def genesis(self, pnl_pool: int) -> None:
        """Create the vault token account holding the PnL pool (minted, supply adjusted)."""
        self.ledger.write_token_account(self.vault, mint=self.usdc_mint, owner=self.signer, amount=0)
        self._mint_into_vault(pnl_pool)
        self.pnl_pool = pnl_pool

    def subaccount(self, authority: Pubkey, subaccount_id: int, *, create: bool) -> Subaccount:
        """The subaccount of (authority, id); created empty when ``create``, else KeyError."""
        user = str(program.user_pda(authority, subaccount_id))
        found = self.subaccounts.get(user)
        if found is None:
            if not create:
                raise KeyError(f"no Drift subaccount {subaccount_id} for {authority}")
            found = Subaccount(str(authority), subaccount_id, user)
            self.subaccounts[user] = found
        return found

    def deposit(self, authority: Pubkey, subaccount_id: int, amount: int) -> Subaccount:
        """Credit collateral, backed by USDC newly minted into the vault."""
        sub = self.subaccount(authority, subaccount_id, create=True)
        self._mint_into_vault(amount)
        sub.collateral += amount
        return sub

    def realize_pnl(self, authority: Pubkey, subaccount_id: int, pnl: int) -> Subaccount:
        """A position closed: add ``pnl`` (signed base units) to the unsettled PnL."""
        sub = self.subaccount(authority, subaccount_id, create=True)
        sub.unsettled_pnl += pnl
        return sub

    def fund_pnl_pool(self, amount: int) -> int:
        """Set the PnL pool to ``amount`` base units (minting or burning vault tokens)."""
        delta = amount - self.pnl_pool
        self._mint_into_vault(delta)
        self.pnl_pool = amount
        return self.pnl_pool

    def transfer_out(
        self, authority: Pubkey, subaccount_id: int, amount: int, destination_ata: Pubkey
    ) -> TxRecord:
        """A user withdrawing on-chain behind the platform's back (for delinquency tests).

        Moves ``amount`` (clamped to withdrawable) from collateral to ``destination_ata`` (an
        existing USDC token account) and records a landed transaction touching the authority,
        the user account, the vault and the destination, with a synthetic signature.
        """
        sub = self.subaccount(authority, subaccount_id, create=False)
        amount = min(amount, sub.withdrawable)
        destination = self.ledger.token_account(destination_ata)
        if destination is None or destination.mint != self.usdc_mint:
            raise ValueError("destination must be an existing USDC token account")
        keys = [Pubkey.from_string(sub.authority), Pubkey.from_string(sub.user), self.vault]
        keys.append(destination_ata)
        pre_lamports, pre_tokens = self.ledger.balances(keys)
        self._move_from_vault(destination_ata, amount)
        sub.collateral -= amount
        sub.withdrawals.append((self.ledger.block_time, amount))
        post_lamports, post_tokens = self.ledger.balances(keys)
        digest = hashlib.sha512(f"{sub.user}:{self.ledger.slot}:{len(self.ledger.transactions)}".encode())
        signature = str(Signature(digest.digest()))
        record = TxRecord(
            signature=signature,
            raw=b"",
            slot=self.ledger.slot,
            block_time=self.ledger.block_time,
            fee=5_000,
            err=None,
            logs=[
                f"Program {program.DRIFT_PROGRAM_ID} invoke [1]",
                "Program log: Instruction: Withdraw",
                f"Program log: localnet_driftTransferOut moved {amount} base units",
                f"Program {program.DRIFT_PROGRAM_ID} success",
            ],
            compute_units=EMULATED_UNITS,
            account_keys=keys,
            pre_balances=pre_lamports,
            post_balances=post_lamports,
            pre_token_balances=pre_tokens,
            post_token_balances=post_tokens,
        )
        self.ledger.record(record)
        return record

    # --- transactions ------------------------------------------------------------------------
    def handles(self, tx: VersionedTransaction) -> bool:
        """True when the transaction calls the Drift program."""
        keys = tx.message.account_keys
        return any(keys[ix.program_id_index] == program.DRIFT_PROGRAM_ID for ix in tx.message.instructions)

    def execute(self, tx: VersionedTransaction, *, apply: bool = True) -> Outcome:
        """Run a Drift transaction's instructions in order; apply all or nothing.

        Returns the Outcome; state changes only when every instruction succeeds and ``apply``
        (``apply=False`` simulates).
        """
        message = tx.message
        keys = list(message.account_keys)
        signers = set(keys[: message.header.num_required_signatures])
        staged = _Staging(self)
        logs: list[str] = []
        units = 0
        for index, ix in enumerate(message.instructions):
            program_id = keys[ix.program_id_index]
            accounts = [keys[i] for i in bytes(ix.accounts)]
            logs.append(f"Program {program_id} invoke [1]")
            try:
                if program_id == COMPUTE_BUDGET_PROGRAM_ID:
                    units += 150
                elif program_id == ASSOCIATED_TOKEN_PROGRAM_ID:
                    staged.create_ata(bytes(ix.data), accounts, logs)
                    units += 20_000
                elif program_id == program.DRIFT_PROGRAM_ID:
                    staged.drift(bytes(ix.data), accounts, signers, logs)
                    units += EMULATED_UNITS
                else:
                    raise DriftEmulationError(
                        "IncorrectProgramId",
                        "the local node's emulated Drift program runs only with compute-budget "
                        "and associated-token-account instructions in one transaction",
                    )
            except DriftEmulationError as exc:
                logs.append(f"Program log: {exc.log}")
                inner = exc.inner
                code = f"custom program error: {inner['Custom']:#x}" if isinstance(inner, dict) else inner
                logs.append(f"Program {program_id} failed: {code}")
                return Outcome({"InstructionError": [index, inner]}, logs, units)
            logs.append(f"Program {program_id} success")
        if apply:
            staged.apply()
        return Outcome(None, logs, units)

    # --- token plumbing ----------------------------------------------------------------------
    def _mint_into_vault(self, amount: int) -> None:
        if amount == 0:
            return
        vault = self.ledger.token_account(self.vault)
        self.ledger.write_token_account(
            self.vault, mint=self.usdc_mint, owner=self.signer, amount=vault.amount + amount
        )
        mint_account = self.ledger.get_account(self.usdc_mint)
        mint = Mint.from_bytes(bytes(mint_account.data))
        updated = Mint(
            mint_authority=mint.mint_authority,
            supply=mint.supply + amount,
            decimals=mint.decimals,
            is_initialized=True,
            freeze_authority=mint.freeze_authority,
        )
        self.ledger.set_account(
            self.usdc_mint,
            Account(lamports=mint_account.lamports, data=bytes(updated), owner=mint_account.owner),
        )

    def _move_from_vault(self, destination: Pubkey, amount: int) -> None:
        vault = self.ledger.token_account(self.vault)
        target = self.ledger.token_account(destination)
        self.ledger.write_token_account(
            self.vault, mint=self.usdc_mint, owner=self.signer, amount=vault.amount - amount
        )
        self.ledger.write_token_account(
            destination, mint=self.usdc_mint, owner=target.owner, amount=target.amount + amount
        )

    # --- snapshots ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Serializable state (subaccounts, PnL pool, daily limit) for ``--snapshot``."""
        return {
            "pnlPool": self.pnl_pool,
            "dailyWithdrawLimit": self.daily_withdraw_limit,
            "subaccounts": [
                {**sub.to_json(), "withdrawals": sub.withdrawals} for sub in self.subaccounts.values()
            ],
        }

    def load_json(self, state: dict[str, Any]) -> None:
        """Restore what ``to_json`` saved (token accounts are restored by the ledger)."""
        self.pnl_pool = state["pnlPool"]
        self.daily_withdraw_limit = state.get("dailyWithdrawLimit")
        for item in state["subaccounts"]:
            sub = Subaccount(
                authority=item["authority"],
                subaccount_id=item["subaccountId"],
                user=item["user"],
                collateral=item["collateral"],
                unsettled_pnl=item["unsettledPnl"],
                settled_pnl=item["settledPnl"],
                delegate=item["delegate"],
                withdrawals=[tuple(w) for w in item.get("withdrawals", [])],
            )
            self.subaccounts[sub.user] = sub


class _Staging:
    """The effects of one Drift transaction, evaluated in order and applied only if all succeed."""

    def __init__(self, emulator: DriftEmulator) -> None:
        self.emulator = emulator
        self.ledger = emulator.ledger
        self.subs: dict[str, Subaccount] = {}
        self.pnl_pool = emulator.pnl_pool
        self.token_deltas: dict[Pubkey, int] = {}
        self.new_atas: dict[Pubkey, Pubkey] = {}  # ata -> wallet
        self.lamport_debits: dict[Pubkey, int] = {}

    def _sub(self, user: Pubkey) -> Subaccount:
        key = str(user)
        if key not in self.subs:
            current = self.emulator.subaccounts.get(key)
            if current is None:
                raise DriftEmulationError(
                    {"Custom": ANCHOR_ACCOUNT_NOT_INITIALIZED},
                    f"AccountNotInitialized: no Drift user account at {key}",
                )
            self.subs[key] = replace(current, withdrawals=list(current.withdrawals))
        return self.subs[key]

    def _usdc_account_exists(self, pubkey: Pubkey) -> bool:
        if pubkey in self.new_atas:
            return True
        state = self.ledger.token_account(pubkey)
        return state is not None and state.mint == self.emulator.usdc_mint

    def create_ata(self, data: bytes, accounts: list[Pubkey], logs: list[str]) -> None:
        from spl.token.instructions import get_associated_token_address

        if data not in (b"", b"\x00", b"\x01") or len(accounts) < 4:
            raise DriftEmulationError("InvalidInstructionData", "unsupported ATA instruction")
        payer, ata, wallet, mint = accounts[:4]
        if ata != get_associated_token_address(wallet, mint):
            raise DriftEmulationError("InvalidSeeds", "Associated address does not match seed derivation")
        if self.ledger.get_account(ata) is not None or ata in self.new_atas:
            if data == b"\x01":
                logs.append("Program log: Create (idempotent): account exists")
                return
            raise DriftEmulationError({"Custom": 0}, "Associated token account already exists")
        if mint != self.emulator.usdc_mint:
            raise DriftEmulationError("InvalidAccountData", "the local node emulates USDC ATAs only here")
        rent = self.ledger.svm.minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_LEN)
        payer_account = self.ledger.get_account(payer)
        debited = self.lamport_debits.get(payer, 0) + rent
        if payer_account is None or payer_account.lamports < debited:
            raise DriftEmulationError({"Custom": 1}, "Transfer: insufficient lamports for rent")
        self.lamport_debits[payer] = debited
        self.new_atas[ata] = wallet
        logs.append("Program log: Create")

    def drift(self, data: bytes, accounts: list[Pubkey], signers: set[Pubkey], logs: list[str]) -> None:
        try:
            decoded = program.decode_instruction(data, accounts)
        except ValueError as exc:
            raise DriftEmulationError({"Custom": ANCHOR_FALLBACK_NOT_FOUND}, str(exc)) from exc
        logs.append(f"Program log: Instruction: {decoded.name[0].upper()}{decoded.name[1:]}")
        if decoded.name == "settlePnl":
            self._settle(decoded, signers, logs)
        elif decoded.name == "withdraw":
            self._withdraw(decoded, signers, logs)
        else:  # pragma: no cover - decode_instruction only returns the two above
            raise DriftEmulationError({"Custom": ANCHOR_FALLBACK_NOT_FOUND}, decoded.name)

    def _settle(self, decoded, signers: set[Pubkey], logs: list[str]) -> None:
        sub = self._sub(decoded.accounts["user"])
        signer = decoded.accounts["authority"]
        allowed = {sub.authority} | ({sub.delegate} if sub.delegate else set())
        if signer not in signers or str(signer) not in allowed:
            raise DriftEmulationError(
                {"Custom": ANCHOR_CONSTRAINT_SIGNER},
                "ConstraintSigner: the authority (or its delegate) must sign",
            )
        pnl = sub.unsettled_pnl
        if pnl > 0:
            if self.pnl_pool < pnl:
                raise _custom("PnlPoolCantSettleUser", f"pool {self.pnl_pool} < pnl {pnl}")
            self.pnl_pool -= pnl
            sub.collateral += pnl
        elif pnl < 0:
            loss = min(-pnl, sub.collateral)
            sub.collateral -= loss
            self.pnl_pool += loss
        sub.settled_pnl += pnl
        sub.unsettled_pnl = 0
        logs.append(f"Program log: settled pnl {pnl}")

    def _withdraw(self, decoded, signers: set[Pubkey], logs: list[str]) -> None:
        sub = self._sub(decoded.accounts["user"])
        signer = decoded.accounts["authority"]
        if signer not in signers or str(signer) != sub.authority:
            raise DriftEmulationError(
                {"Custom": ANCHOR_CONSTRAINT_SIGNER}, "ConstraintSigner: the authority must sign a withdraw"
            )
        if decoded.args["marketIndex"] != 0:
            raise _custom("InvalidSpotMarketAccount", "the local node has only the USDC spot market (0)")
        if decoded.accounts["spotMarketVault"] != self.emulator.vault:
            raise _custom("InvalidSpotMarketAccount", "wrong spot market vault")
        destination = decoded.accounts["userTokenAccount"]
        if not self._usdc_account_exists(destination):
            raise DriftEmulationError(
                {"Custom": ANCHOR_ACCOUNT_NOT_INITIALIZED},
                "AccountNotInitialized: userTokenAccount is not a USDC token account",
            )
        amount = decoded.args["amount"]
        withdrawable = sub.withdrawable
        if decoded.args["reduceOnly"]:
            amount = min(amount, withdrawable)
        if amount <= 0 or amount > withdrawable:
            raise _custom(
                "InsufficientCollateral", f"asked {decoded.args['amount']}, withdrawable {withdrawable}"
            )
        delivered = self.emulator.faults.partial_amount(amount)
        limit = self.emulator.daily_withdraw_limit
        now = self.ledger.block_time
        if limit is not None:
            recent = sum(a for t, a in sub.withdrawals if now - t < SECONDS_PER_DAY)
            if recent + delivered > limit:
                raise _custom("DailyWithdrawLimit", f"{recent} + {delivered} > {limit} per day")
        sub.collateral -= delivered
        sub.withdrawals.append((now, delivered))
        self.token_deltas[self.emulator.vault] = self.token_deltas.get(self.emulator.vault, 0) - delivered
        self.token_deltas[destination] = self.token_deltas.get(destination, 0) + delivered
        logs.append(f"Program log: withdraw requested {decoded.args['amount']} delivered {delivered}")

    def apply(self) -> None:
        """Write the staged effects to the ledger and the emulator."""
        emulator = self.emulator
        for payer, lamports in self.lamport_debits.items():
            self.ledger.add_lamports(payer, -lamports)
        for ata, wallet in self.new_atas.items():
            self.ledger.write_token_account(ata, mint=emulator.usdc_mint, owner=wallet, amount=0)
        for pubkey, delta in self.token_deltas.items():
            state = self.ledger.token_account(pubkey)
            self.ledger.write_token_account(
                pubkey, mint=state.mint, owner=state.owner, amount=state.amount + delta
            )
        emulator.subaccounts.update(self.subs)
        emulator.pnl_pool = self.pnl_pool
