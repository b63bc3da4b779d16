"""The local node's ledger: a LiteSVM plus everything a validator keeps that LiteSVM does not.

LiteSVM (``solders.litesvm``) executes transactions with the real SPL Token and Associated Token
Account programs, real fees and rent. It does not keep time, a blockhash window, a durable
signature table, per-transaction records (slot, fee, pre/post balances) or an account index, and
it accepts transactions over the 1,232-byte limit. This module adds those, as measured in
LiteSVM's own behaviour (each point checked by ``tests/localnet``):

* blockhashes are issued by the ledger (one per slot) and a transaction is accepted only while its
  blockhash is at most ``BLOCKHASH_VALIDITY_BLOCKS`` (150) blocks old, as on mainnet; LiteSVM's own
  check (which knows only the latest blockhash) is turned off;
* every landed signature is kept for the node's lifetime, so re-sending the same signed bytes never
  lands twice (LiteSVM's history would forget after 500 and land it again);
* slot == block height (the local node skips no slots); block time is derived from the slot.

Not thread-safe: the node owns one ``Ledger`` and calls it under one lock (see ``node.py``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from solders.account import Account
from solders.clock import Clock
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.token.state import Mint, TokenAccount, TokenAccountState
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from spl.token.constants import TOKEN_PROGRAM_ID

from profitshare.localnet.tx_errors import NOT_LANDED_ERRORS, error_name, transaction_error_json

TOKEN_ACCOUNT_LEN = 165
MINT_LEN = 82
# Solana: a blockhash is usable for 150 blocks after the block that produced it.
BLOCKHASH_VALIDITY_BLOCKS = 150
# Solana's packet limit for a serialized transaction (bytes).
MAX_TRANSACTION_BYTES = 1232
# The base fee LiteSVM charges per signature (lamports), as mainnet does.
LAMPORTS_PER_SIGNATURE = 5_000
# Statuses of transactions older than this many slots are found only with searchTransactionHistory.
RECENT_STATUS_SLOTS = 300
COMMITMENT_FINALIZED_DEPTH = 32


@dataclass
class TokenBalance:
    """A token account's state at one moment, kept as its raw 165 bytes and decoded only when
    getTransaction asks (the hot path of sendTransaction does not parse it)."""

    account_index: int
    data: bytes

    def to_json(self, decimals_of) -> dict[str, Any]:
        """The ``UiTransactionTokenBalance`` shape of Solana's RPC; ``decimals_of(mint_str)``."""
        state = TokenAccount.from_bytes(self.data)
        mint = str(state.mint)
        return {
            "accountIndex": self.account_index,
            "mint": mint,
            "owner": str(state.owner),
            "programId": str(TOKEN_PROGRAM_ID),
            "uiTokenAmount": ui_token_amount(state.amount, decimals_of(mint)),
        }


@dataclass
class TxRecord:
    """A landed transaction as the node remembers it (enough to answer getTransaction)."""

    signature: str
    raw: bytes
    slot: int
    block_time: int
    fee: int
    err: Any
    logs: list[str]
    compute_units: int
    account_keys: list[Pubkey]
    pre_balances: list[int]
    post_balances: list[int]
    pre_token_balances: list[TokenBalance] = field(default_factory=list)
    post_token_balances: list[TokenBalance] = field(default_factory=list)


class TransactionRejected(Exception):
    """A transaction that did not land (or, in preflight, would not): err JSON, logs, units."""

    def __init__(self, err: Any, logs: list[str] | None = None, units: int = 0) -> None:
        super().__init__(error_name(err))
        self.err = err
        self.logs = logs or []
        self.units = units


@dataclass
class Outcome:
    """What executing one transaction did: an error (JSON) or None, logs and compute units;
    a simulation's ``post_accounts`` (``{pubkey: Account}`` of the accounts it wrote) too."""

    err: Any
    logs: list[str]
    units: int
    post_accounts: dict | None = None


def ui_token_amount(amount: int, decimals: int) -> dict[str, Any]:
    """Solana's ``UiTokenAmount``: the integer amount as a string plus display forms.

    ``uiAmount`` is a float in Solana's own RPC; it is display only and never read back by us.
    """
    whole, frac = divmod(amount, 10**decimals)
    ui_string = f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": float(ui_string) if amount else 0.0,
        "uiAmountString": ui_string,
    }


class Ledger:
    """One LiteSVM with a validator's bookkeeping around it.

    Amounts are integers: lamports for SOL, base units for tokens. ``genesis_seed`` makes the
    issued blockhashes reproducible.
    """

    def __init__(self, *, genesis_seed: bytes, genesis_unix: int, slot_ms: int) -> None:
        self.svm = (
            LiteSVM()
            .with_blockhash_check(False)
            .with_sigverify(True)
            .with_transaction_history(0)
            .with_log_bytes_limit(None)
        )
        self.genesis_seed = genesis_seed
        self.genesis_unix = genesis_unix
        self.slot_ms = slot_ms
        self.slot = 0
        self.blockhash_heights: dict[str, int] = {}
        self._blockhash_order: deque[str] = deque()
        self.latest_blockhash = ""
        self.transactions: dict[str, TxRecord] = {}
        self.signatures_by_address: dict[Pubkey, list[str]] = {}
        self.token_accounts_by_owner: dict[Pubkey, set[Pubkey]] = {}
        self.known_accounts: set[Pubkey] = set()
        self.accounts_by_program: dict[Pubkey, set[Pubkey]] = {}
        self._executable_lamports: dict[Pubkey, int] = {}
        self._decimals_by_mint: dict[str, int] = {}
        self._issue_blockhash()
        self._set_clock()

    # --- time ------------------------------------------------------------------------------
    @property
    def block_height(self) -> int:
        """Block height; equal to the slot (the local node skips no slots)."""
        return self.slot

    @property
    def block_time(self) -> int:
        """Unix time of the current slot (seconds), derived from the slot and slot duration."""
        return self.genesis_unix + (self.slot * self.slot_ms) // 1000

    def advance(self, slots: int = 1) -> None:
        """Produce ``slots`` new blocks: slot, block height, blockhash and Clock move together."""
        if slots < 0:
            raise ValueError("slots must be >= 0")
        for _ in range(slots):
            self.slot += 1
            self._issue_blockhash()
        if slots:
            self._set_clock()

    def _set_clock(self) -> None:
        """The Clock sysvar follows the slot and block time (Drift reads both)."""
        self.svm.set_clock(
            Clock(
                slot=self.slot,
                epoch_start_timestamp=self.genesis_unix,
                epoch=0,
                leader_schedule_epoch=0,
                unix_timestamp=self.block_time,
            )
        )

    def blockhash_at(self, slot: int) -> str:
        """The blockhash the ledger issues (or issued) at ``slot``: derived from the genesis seed
        and the slot, so a replica's view of an earlier slot names the same blockhash."""
        return str(Hash(hashlib.sha256(self.genesis_seed + slot.to_bytes(8, "little")).digest()))

    def _issue_blockhash(self) -> None:
        blockhash = self.blockhash_at(self.slot)
        self.latest_blockhash = blockhash
        self.blockhash_heights[blockhash] = self.slot
        self._blockhash_order.append(blockhash)
        while len(self._blockhash_order) > 2 * BLOCKHASH_VALIDITY_BLOCKS:
            self.blockhash_heights.pop(self._blockhash_order.popleft(), None)

    def last_valid_block_height(self, blockhash: str) -> int | None:
        """The last block height at which ``blockhash`` is accepted, or None if never issued."""
        issued = self.blockhash_heights.get(blockhash)
        return None if issued is None else issued + BLOCKHASH_VALIDITY_BLOCKS

    def is_blockhash_valid(self, blockhash: str, *, at: int | None = None) -> bool:
        """True while the blockhash was issued here and is at most 150 blocks old; ``at``: as
        seen at that earlier block height (a replica behind), default now."""
        issued = self.blockhash_heights.get(blockhash)
        height = self.block_height if at is None else at
        return issued is not None and issued <= height <= issued + BLOCKHASH_VALIDITY_BLOCKS

    # --- accounts --------------------------------------------------------------------------
    def get_account(self, pubkey: Pubkey) -> Account | None:
        """The account, or None when it does not exist (zero lamports)."""
        account = self.svm.get_account(pubkey)
        if account is None or (account.lamports == 0 and not account.data):
            return None
        return account

    def set_account(self, pubkey: Pubkey, account: Account) -> None:
        """Write an account directly (world building, snapshots)."""
        self.svm.set_account(pubkey, account)
        self._note_account(pubkey, account)

    def airdrop(self, pubkey: Pubkey, lamports: int) -> None:
        """Credit lamports to a system account, creating it (requestAirdrop)."""
        self.add_lamports(pubkey, lamports)

    def add_lamports(self, pubkey: Pubkey, delta: int, *, account: Account | None = None) -> None:
        """Change an account's lamports by ``delta`` (negative debits), keeping its data and
        owner; a missing account is created as a system account. ``account``: its current state
        when the caller already read it."""
        account = account or self.get_account(pubkey) or Account(lamports=0, data=b"", owner=Pubkey.default())
        if account.lamports + delta < 0:
            raise ValueError(f"{pubkey} would go below zero lamports")
        self.set_account(
            pubkey,
            Account(
                lamports=account.lamports + delta,
                data=bytes(account.data),
                owner=account.owner,
                executable=account.executable,
            ),
        )

    def token_account(self, pubkey: Pubkey) -> TokenAccount | None:
        """The SPL token account state at ``pubkey``, or None if it is not one."""
        account = self.get_account(pubkey)
        if account is None or account.owner != TOKEN_PROGRAM_ID:
            return None
        if len(account.data) != TOKEN_ACCOUNT_LEN:
            return None
        return TokenAccount.from_bytes(bytes(account.data))

    def mint_decimals(self, mint: str) -> int:
        """Decimals of a mint (cached; mints do not change decimals)."""
        if mint not in self._decimals_by_mint:
            account = self.get_account(Pubkey.from_string(mint))
            if account is None or len(account.data) != MINT_LEN:
                return 0
            self._decimals_by_mint[mint] = Mint.from_bytes(bytes(account.data)).decimals
        return self._decimals_by_mint[mint]

    def write_token_account(
        self, pubkey: Pubkey, *, mint: Pubkey, owner: Pubkey, amount: int, lamports: int | None = None
    ) -> None:
        """Create or overwrite an initialized SPL token account (world building only)."""
        if amount < 0:
            raise ValueError("token amount must be >= 0")
        existing = self.get_account(pubkey)
        if lamports is None:
            lamports = (
                existing.lamports
                if existing
                else self.svm.minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_LEN)
            )
        state = TokenAccount(
            mint=mint,
            owner=owner,
            amount=amount,
            delegate=None,
            state=TokenAccountState.Initialized,
            is_native=None,
            delegated_amount=0,
            close_authority=None,
        )
        self.set_account(
            pubkey, Account(lamports=lamports, data=bytes(state), owner=TOKEN_PROGRAM_ID)
        )

    def owned_by(self, program_id: Pubkey) -> set[Pubkey]:
        """Keys of the accounts this ledger has seen owned by ``program_id`` (they may since
        have been closed: read them before use)."""
        return self.accounts_by_program.get(program_id, set())

    def _note_account(self, key: Pubkey, account: Account | None) -> None:
        if account is None:
            return
        self.known_accounts.add(key)
        self.accounts_by_program.setdefault(account.owner, set()).add(key)
        data = bytes(account.data)
        if account.owner == TOKEN_PROGRAM_ID and len(data) == TOKEN_ACCOUNT_LEN:
            owner = Pubkey.from_bytes(data[32:64])  # SPL Token account layout: mint, owner, ...
            self.token_accounts_by_owner.setdefault(owner, set()).add(key)

    # --- transactions ----------------------------------------------------------------------
    def balances(
        self, keys: list[Pubkey], *, note: bool = False
    ) -> tuple[list[int], list[TokenBalance]]:
        """Lamports of every key and the state of every token account among them.

        ``note``: also add the accounts to the index (after a transaction ran).
        """
        lamports: list[int] = []
        tokens: list[TokenBalance] = []
        for index, key in enumerate(keys):
            cached = self._executable_lamports.get(key)
            if cached is not None:
                lamports.append(cached)
                continue
            account = self.svm.get_account(key)
            if account is None:
                lamports.append(0)
                continue
            if account.executable:
                self._executable_lamports[key] = account.lamports
                lamports.append(account.lamports)
                continue
            lamports.append(account.lamports)
            if note:
                self.accounts_by_program.setdefault(account.owner, set()).add(key)
            if account.owner == TOKEN_PROGRAM_ID:
                data = bytes(account.data)
                if len(data) == TOKEN_ACCOUNT_LEN:
                    tokens.append(TokenBalance(index, data))
                    if note:
                        owner = Pubkey.from_bytes(data[32:64])
                        self.token_accounts_by_owner.setdefault(owner, set()).add(key)
            if note:
                self.known_accounts.add(key)
        return lamports, tokens

    def check_admissible(self, tx: VersionedTransaction, *, verify_signatures: bool) -> None:
        """Refuse what a validator refuses before execution.

        Raises ``TransactionRejected`` with ``AlreadyProcessed`` (signature landed before),
        ``BlockhashNotFound`` (never issued or older than 150 blocks) or, when
        ``verify_signatures`` (LiteSVM verifies the transactions it runs itself),
        ``SignatureFailure``.
        """
        signature = str(tx.signatures[0])
        if signature in self.transactions:
            raise TransactionRejected("AlreadyProcessed")
        if not self.is_blockhash_valid(str(tx.message.recent_blockhash)):
            raise TransactionRejected("BlockhashNotFound")
        if verify_signatures and not all(tx.verify_with_results()):
            raise TransactionRejected("SignatureFailure")

    def execute(
        self, tx: VersionedTransaction, raw: bytes, *, preflight: bool, sigverify: bool = True
    ) -> TxRecord:
        """Execute a transaction and record it, as ``sendTransaction`` does.

        ``sigverify=False`` runs it with signature verification off (the node's own
        world-building transactions impersonating an authority; never a client's). With ``preflight``, a failing
        transaction is rolled back (no fee, nothing recorded) and raised as
        ``TransactionRejected``; without it, a failing transaction lands with ``err`` set and the
        fee charged, as on a validator. Errors that keep a transaction out of any block
        (unfunded fee payer, bad blockhash, duplicate) are always raised.
        """
        self.check_admissible(tx, verify_signatures=False)
        keys = list(tx.message.account_keys)
        payer = keys[0]
        payer_before = self.svm.get_account(payer)
        pre_lamports, pre_tokens = self.balances(keys)
        fee = LAMPORTS_PER_SIGNATURE * len(tx.signatures)
        if sigverify:
            outcome = self._execute_svm(tx)
        else:
            self.svm.with_sigverify(False)
            try:
                outcome = self._execute_svm(tx)
            finally:
                self.svm.with_sigverify(True)
        if outcome.err is not None:
            not_landed = error_name(outcome.err) in NOT_LANDED_ERRORS
            if preflight or not_landed:
                if payer_before is not None:
                    self.svm.set_account(payer, payer_before)
                raise TransactionRejected(outcome.err, outcome.logs, outcome.units)
        post_lamports, post_tokens = self.balances(keys, note=True)
        signature = str(tx.signatures[0])
        record = TxRecord(
            signature=signature,
            raw=raw,
            slot=self.slot,
            block_time=self.block_time,
            fee=fee,
            err=outcome.err,
            logs=outcome.logs,
            compute_units=outcome.units,
            account_keys=keys,
            pre_balances=pre_lamports,
            post_balances=post_lamports,
            pre_token_balances=pre_tokens,
            post_token_balances=post_tokens,
        )
        self.record(record)
        return record

    def _execute_svm(self, tx: VersionedTransaction) -> Outcome:
        result = self.svm.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            return Outcome(
                transaction_error_json(result.err()), list(meta.logs()), meta.compute_units_consumed()
            )
        return Outcome(None, list(result.logs()), result.compute_units_consumed())

    def simulate(self, tx: VersionedTransaction, *, sig_verify: bool, want: tuple[Pubkey, ...] = ()) -> Outcome:
        """Simulate without changing state (simulateTransaction); ``post_accounts`` holds the
        post-transaction state of the accounts in ``want`` that the transaction wrote."""
        if sig_verify and not all(tx.verify_with_results()):
            return Outcome("SignatureFailure", [], 0)
        result = self.svm.simulate_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            return Outcome(
                transaction_error_json(result.err()), list(meta.logs()), meta.compute_units_consumed()
            )
        meta = result.meta()
        post = {}
        if want:
            wanted = set(want)
            post = {key: account for key, account in result.post_accounts() if key in wanted}
        return Outcome(None, list(meta.logs()), meta.compute_units_consumed(), post)

    def record(self, record: TxRecord) -> None:
        """Remember a landed transaction and index it by every account it touched."""
        self.transactions[record.signature] = record
        for key in record.account_keys:
            self.signatures_by_address.setdefault(key, []).append(record.signature)
