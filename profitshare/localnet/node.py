"""The local node: ledger + the real Drift program + faults + a slot clock, behind one lock.

Concurrency model: every read and write of the SVM happens under ``LocalNode.lock`` (one
``threading.RLock``). The HTTP server serves each connection on its own thread, parses JSON and
encodes answers outside the lock, and takes the lock only to touch the ledger; the slot clock is
one more thread that takes the lock once per slot. LiteSVM is not documented as thread-safe, so
no two threads are ever inside it at once.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from solders.account import Account
from solders.compute_budget import set_compute_unit_limit
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.token.state import Mint
from solders.transaction import Transaction, VersionedTransaction
from spl.token.instructions import (
    MintToCheckedParams,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    mint_to_checked,
)

from profitshare.localnet import drift_program
from profitshare.localnet.drift_world import DriftWorld, PerpMarketSpec, placeholder_signature
from profitshare.localnet.faults import Faults
from profitshare.localnet.ledger import (
    LAMPORTS_PER_SIGNATURE,
    MINT_LEN,
    TOKEN_PROGRAM_ID,
    Ledger,
    Outcome,
    TokenBalance,
    TxRecord,
)

logger = logging.getLogger(__name__)

USDC_MINT = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
USDC_DECIMALS = 6
DEFAULT_SLOT_MS = 400
DEFAULT_PNL_POOL = 1_000_000 * 10**USDC_DECIMALS  # 1,000,000 USDC in base units
FAUCET_LAMPORTS = 1_000_000 * 10**9  # 1,000,000 SOL
SNAPSHOT_VERSION = 2


class LocalNode:
    """A Solana node for development and tests, on the real SVM (``solders.litesvm``) with the
    real Drift v2 program loaded (``drift_program``; its sha256 is checked).

    ``slot_ms``: milliseconds per slot of the background clock (0 = time moves only by
    ``advance_slots``). ``pnl_pool``: base units each perp market's PnL pool starts with.
    ``self_check``: verify Drift's sums (``DriftWorld.check_invariants``) after every
    world-building call (the tests turn it on). ``genesis=False``: only the program is loaded
    (a snapshot restores the accounts).
    """

    def __init__(
        self,
        *,
        slot_ms: int = DEFAULT_SLOT_MS,
        pnl_pool: int = DEFAULT_PNL_POOL,
        seed: bytes | None = None,
        usdc_mint: Pubkey = USDC_MINT,
        self_check: bool = False,
        genesis: bool = True,
    ) -> None:
        self.lock = threading.RLock()
        self.slot_ms = slot_ms
        self.usdc_mint = usdc_mint
        self.self_check = self_check
        self.faults = Faults()
        self.ledger = Ledger(
            genesis_seed=seed or os.urandom(32),
            genesis_unix=int(time.time()),
            slot_ms=slot_ms or DEFAULT_SLOT_MS,
        )
        drift_program.load_into(self.ledger.svm)
        self.faucet = Keypair()
        self.drift = DriftWorld(self.ledger, usdc_mint, self.faucet, self.run_instructions)
        self._faucet_nonce = 0
        self._stop = threading.Event()
        self._clock_thread: threading.Thread | None = None
        if genesis:
            self._genesis(pnl_pool)

    # --- lifecycle ---------------------------------------------------------------------------
    def _genesis(self, pnl_pool: int) -> None:
        self.ledger.airdrop(self.faucet.pubkey(), FAUCET_LAMPORTS)
        mint = Mint(
            mint_authority=self.faucet.pubkey(),
            supply=0,
            decimals=USDC_DECIMALS,
            is_initialized=True,
            freeze_authority=None,
        )
        rent = self.ledger.svm.minimum_balance_for_rent_exemption(MINT_LEN)
        self.ledger.set_account(
            self.usdc_mint, Account(lamports=rent, data=bytes(mint), owner=TOKEN_PROGRAM_ID)
        )
        self.drift.genesis(pnl_pool)
        self.checked()

    def start_clock(self) -> None:
        """Start the background slot clock (one slot every ``slot_ms``); no-op when 0."""
        if self.slot_ms <= 0 or self._clock_thread is not None:
            return
        self._stop.clear()
        self._clock_thread = threading.Thread(target=self._tick, name="localnet-clock", daemon=True)
        self._clock_thread.start()

    def stop_clock(self) -> None:
        """Stop the slot clock and wait for its thread."""
        self._stop.set()
        if self._clock_thread is not None:
            self._clock_thread.join(timeout=5)
            self._clock_thread = None

    def _tick(self) -> None:
        interval = self.slot_ms / 1000
        next_at = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            with self.lock:
                self.ledger.advance(1)
            next_at += interval

    # --- transactions ------------------------------------------------------------------------
    def send_transaction_parsed(
        self, tx: VersionedTransaction, raw: bytes, *, preflight: bool
    ) -> TxRecord:
        """Execute and record a parsed transaction (see ``Ledger.execute``).

        Every transaction runs in LiteSVM, Drift's included. Under the ``partialWithdrawRatio``
        fault, the depositor of each Drift withdraw in it has its USDC deposit above
        floor(amount × ratio) set aside while the transaction runs (``DriftWorld.lower_deposit``)
        and given back after it, so Drift's reduce-only withdraw clamps to that much and the
        rest stays the subscriber's. Raises ``TransactionRejected`` when it does not land (or
        fails preflight).
        """
        with self.lock:
            with self._partial_withdraws(tx.message):
                return self.ledger.execute(tx, raw, preflight=preflight)

    def simulate(self, tx: VersionedTransaction, *, sig_verify: bool, want: tuple[Pubkey, ...] = ()) -> Outcome:
        """Simulate without changing state (simulateTransaction); ``want``: accounts whose
        post-transaction state to return. Under the ``partialWithdrawRatio`` fault the
        simulation sees what the execution would."""
        with self.lock:
            with self._partial_withdraws(tx.message):
                return self.ledger.simulate(tx, sig_verify=sig_verify, want=want)

    @contextlib.contextmanager
    def _partial_withdraws(self, message):
        """Under the ``partialWithdrawRatio`` fault, make each Drift withdraw in ``message``
        find at most floor(amount × ratio) of its user's USDC while the transaction runs: the
        deposit above that is set aside; when the transaction also settles that user's PnL
        first (the one-transaction payout), the deposit is set aside whole and the settled
        market's PnL pool down to that amount, so the settle adds at most that much. All is
        given back afterwards. Caller holds the node's lock."""
        if self.faults.partial_withdraw_ratio is None:
            yield
            return
        settles = {}
        for user_key, market in self.drift.settles_in(message):
            settles.setdefault(user_key, market)
        deposits, pools = [], []
        try:
            for user_key, amount in self.drift.withdraws_in(message):
                owner = self.drift.authority_of(user_key)
                if owner is None:
                    continue
                target = self.faults.partial_amount(amount)
                held = self.drift.lower_deposit(*owner, 0 if user_key in settles else target)
                if held is not None:
                    deposits.append((owner, held))
                if user_key in settles:
                    pools.append((settles[user_key], self.drift.lower_pnl_pool(settles[user_key], target)))
            yield
        finally:
            for owner, held in deposits:
                self.drift.restore_deposit(*owner, held)
            for market, aside in pools:
                self.drift.restore_pnl_pool(market, aside)

    def run_instructions(
        self,
        instructions: list[Instruction],
        *,
        signers: list[Keypair] = (),
        impersonate: list[Pubkey] = (),
    ) -> TxRecord:
        """Land ``instructions`` in one transaction paid and signed by the node's faucet (Drift's
        admin and the USDC mint authority) and ``signers``; every key in ``impersonate`` signs
        with a placeholder and the transaction runs with signature verification off (world
        building for authorities whose keys the node does not hold). A per-call compute-unit
        limit makes every such transaction's bytes unique. Raises ``TransactionRejected``."""
        with self.lock:
            self._faucet_nonce += 1
            nonce_ix = set_compute_unit_limit(1_400_000 - self._faucet_nonce % 1_000_000)
            message = Message([nonce_ix, *instructions], self.faucet.pubkey())
            blockhash = Hash.from_string(self.ledger.latest_blockhash)
            if not impersonate:
                tx = VersionedTransaction.from_legacy(
                    Transaction([self.faucet, *signers], message, blockhash)
                )
                return self.ledger.execute(tx, bytes(tx), preflight=True)
            legacy = Transaction.new_unsigned(message)
            real = {k.pubkey(): k for k in (self.faucet, *signers)}
            signed_by = message.account_keys[: message.header.num_required_signatures]
            legacy.partial_sign(list(real.values()), blockhash)
            signatures = [
                legacy.signatures[n] if key in real else Signature(placeholder_signature())
                for n, key in enumerate(signed_by)
            ]
            tx = VersionedTransaction.populate(legacy.message, signatures)
            return self.ledger.execute(tx, bytes(tx), preflight=True, sigverify=False)

    def checked(self) -> None:
        """Run Drift's self-check when ``self_check`` is on (after world building)."""
        if self.self_check:
            with self.lock:
                self.drift.check_invariants()

    def _faucet_transaction(self, instructions: list[Instruction]) -> TxRecord:
        return self.run_instructions(instructions)

    def airdrop(self, owner: Pubkey, lamports: int) -> TxRecord:
        """Send ``lamports`` from the faucet to ``owner`` by a real system transfer."""
        return self._faucet_transaction(
            [transfer(TransferParams(from_pubkey=self.faucet.pubkey(), to_pubkey=owner, lamports=lamports))]
        )

    def ensure_usdc_ata(self, owner: Pubkey) -> Pubkey:
        """``owner``'s USDC ATA, created (rent paid by the faucet) when missing."""
        ata = get_associated_token_address(owner, self.usdc_mint)
        with self.lock:
            if self.ledger.token_account(ata) is None:
                self._faucet_transaction(
                    [create_idempotent_associated_token_account(self.faucet.pubkey(), owner, self.usdc_mint)]
                )
        return ata

    def fund_usdc(self, owner: Pubkey, amount: int) -> TxRecord:
        """Mint ``amount`` USDC base units to ``owner``'s ATA (created if missing), by a real
        transaction signed by the node's mint authority."""
        ata = get_associated_token_address(owner, self.usdc_mint)
        return self._faucet_transaction(
            [
                create_idempotent_associated_token_account(self.faucet.pubkey(), owner, self.usdc_mint),
                mint_to_checked(
                    MintToCheckedParams(
                        program_id=TOKEN_PROGRAM_ID,
                        mint=self.usdc_mint,
                        dest=ata,
                        mint_authority=self.faucet.pubkey(),
                        amount=amount,
                        decimals=USDC_DECIMALS,
                    )
                ),
            ]
        )

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault settings (``localnet_setFaults``)."""
        with self.lock:
            self.faults = faults

    def info(self) -> dict[str, Any]:
        """What the node is: USDC mint, faucet, the Drift program (version, vault, perp markets
        with their oracle prices), slot duration."""
        return {
            "usdcMint": str(self.usdc_mint),
            "usdcDecimals": USDC_DECIMALS,
            "faucet": str(self.faucet.pubkey()),
            "driftProgram": str(drift_program.DRIFT_PROGRAM_ID),
            "driftVersion": drift_program.DRIFT_VERSION,
            "driftVault": str(drift_program.spot_vault_pda(0)),
            "perpMarkets": [
                {"index": m.index, "name": m.name, "oraclePrice": self.drift.oracle_price(m.index)}
                for m in self.drift.perp_markets
            ],
            "slotMs": self.slot_ms,
            "priorityFeesCharged": False,
            "lamportsPerSignature": LAMPORTS_PER_SIGNATURE,
        }

    def advance_slots(self, slots: int) -> int:
        """Produce ``slots`` blocks now; returns the new slot."""
        with self.lock:
            self.ledger.advance(slots)
            return self.ledger.slot

    # --- snapshots ---------------------------------------------------------------------------
    def save_snapshot(self, path: Path) -> None:
        """Write accounts (Drift's included), transactions, the node's Drift settings and the
        clock to ``path`` (JSON). The program itself is not saved: it is the vendored binary."""
        with self.lock:
            ledger = self.ledger
            accounts = {}
            for key in sorted(ledger.known_accounts, key=str):
                account = ledger.svm.get_account(key)
                if account is None or account.executable:
                    continue
                accounts[str(key)] = {
                    "lamports": account.lamports,
                    "owner": str(account.owner),
                    "data": base64.b64encode(bytes(account.data)).decode(),
                }
            state = {
                "version": SNAPSHOT_VERSION,
                "slot": ledger.slot,
                "genesisSeed": ledger.genesis_seed.hex(),
                "genesisUnix": ledger.genesis_unix,
                "faucet": base64.b64encode(bytes(self.faucet)).decode(),
                "accounts": accounts,
                "transactions": [_record_to_json(r) for r in ledger.transactions.values()],
                "drift": {
                    "perpMarkets": [m.__dict__ for m in self.drift.perp_markets],
                    "dailyWithdrawLimit": self.drift.daily_withdraw_limit,
                },
            }
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)

    @classmethod
    def from_snapshot(cls, path: Path, *, slot_ms: int = DEFAULT_SLOT_MS) -> LocalNode:
        """A node restored from ``save_snapshot``; raises ValueError on an unreadable file."""
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read snapshot {path}: {exc}") from exc
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot {path} has version {state.get('version')}, expected 1")
        node = cls(slot_ms=slot_ms, seed=bytes.fromhex(state["genesisSeed"]), genesis=False)
        ledger = node.ledger
        ledger.genesis_unix = state["genesisUnix"]
        node.faucet = Keypair.from_bytes(base64.b64decode(state["faucet"]))
        node.drift.admin = node.faucet
        for key, item in state["accounts"].items():
            ledger.set_account(
                Pubkey.from_string(key),
                Account(
                    lamports=item["lamports"],
                    data=base64.b64decode(item["data"]),
                    owner=Pubkey.from_string(item["owner"]),
                ),
            )
        for item in state["transactions"]:
            ledger.record(_record_from_json(item))
        ledger.advance(max(0, state["slot"] - ledger.slot) + 1)
        node.drift.perp_markets = tuple(PerpMarketSpec(**m) for m in state["drift"]["perpMarkets"])
        node.drift.daily_withdraw_limit = state["drift"].get("dailyWithdrawLimit")
        return node


def _record_to_json(record: TxRecord) -> dict[str, Any]:
    body = dict(record.__dict__)
    body["raw"] = base64.b64encode(record.raw).decode()
    body["account_keys"] = [str(k) for k in record.account_keys]
    for name in ("pre_token_balances", "post_token_balances"):
        body[name] = [[b.account_index, base64.b64encode(b.data).decode()] for b in getattr(record, name)]
    return body


def _record_from_json(item: dict[str, Any]) -> TxRecord:
    item = dict(item)
    item["raw"] = base64.b64decode(item["raw"])
    item["account_keys"] = [Pubkey.from_string(k) for k in item["account_keys"]]
    for name in ("pre_token_balances", "post_token_balances"):
        item[name] = [TokenBalance(index, base64.b64decode(data)) for index, data in item[name]]
    return TxRecord(**item)
