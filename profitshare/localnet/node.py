"""The local node: ledger + emulated Drift + faults + a slot clock, behind one lock.

Concurrency model: every read and write of the SVM happens under ``LocalNode.lock`` (one
``threading.RLock``). The HTTP server serves each connection on its own thread, parses JSON and
encodes answers outside the lock, and takes the lock only to touch the ledger; the slot clock is
one more thread that takes the lock once per slot. LiteSVM is not documented as thread-safe, so
no two threads are ever inside it at once.
"""

from __future__ import annotations

import base64
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
from solders.system_program import TransferParams, transfer
from solders.token.state import Mint
from solders.transaction import Transaction, VersionedTransaction
from spl.token.instructions import (
    MintToCheckedParams,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    mint_to_checked,
)

from profitshare.localnet.drift_emulator import DriftEmulator
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
SNAPSHOT_VERSION = 1


class LocalNode:
    """A Solana node for development and tests, on the real SVM (``solders.litesvm``).

    ``slot_ms``: milliseconds per slot of the background clock (0 = time moves only by
    ``advance_slots``). ``pnl_pool``: base units the emulated Drift PnL pool starts with.
    """

    def __init__(
        self,
        *,
        slot_ms: int = DEFAULT_SLOT_MS,
        pnl_pool: int = DEFAULT_PNL_POOL,
        seed: bytes | None = None,
        usdc_mint: Pubkey = USDC_MINT,
    ) -> None:
        self.lock = threading.RLock()
        self.slot_ms = slot_ms
        self.usdc_mint = usdc_mint
        self.faults = Faults()
        self.ledger = Ledger(
            genesis_seed=seed or os.urandom(32),
            genesis_unix=int(time.time()),
            slot_ms=slot_ms or DEFAULT_SLOT_MS,
        )
        self.drift = DriftEmulator(self.ledger, usdc_mint, self.faults)
        self.faucet = Keypair()
        self._faucet_nonce = 0
        self._stop = threading.Event()
        self._clock_thread: threading.Thread | None = None
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

        Transactions calling the Drift program go to the emulator; all others to LiteSVM.
        Raises ``TransactionRejected`` when it does not land (or fails preflight).
        """
        with self.lock:
            emulate = self.drift.execute if self.drift.handles(tx) else None
            return self.ledger.execute(tx, raw, preflight=preflight, emulate=emulate)

    def simulate(self, tx: VersionedTransaction, *, sig_verify: bool) -> Outcome:
        """Simulate without changing state (simulateTransaction)."""
        with self.lock:
            if self.drift.handles(tx):
                if sig_verify and not all(tx.verify_with_results()):
                    return Outcome("SignatureFailure", [], 0)
                return self.drift.execute(tx, apply=False)
            return self.ledger.simulate(tx, sig_verify=sig_verify)

    def _faucet_transaction(self, instructions: list[Instruction]) -> TxRecord:
        """Sign ``instructions`` with the node's faucet (fee payer and USDC mint authority) and
        land them. A per-call compute-unit limit makes every such transaction's bytes unique,
        so two identical requests in one slot are two transactions, not a duplicate."""
        with self.lock:
            self._faucet_nonce += 1
            nonce_ix = set_compute_unit_limit(1_400_000 - self._faucet_nonce % 1_000_000)
            message = Message([nonce_ix, *instructions], self.faucet.pubkey())
            blockhash = Hash.from_string(self.ledger.latest_blockhash)
            tx = VersionedTransaction.from_legacy(Transaction([self.faucet], message, blockhash))
            return self.ledger.execute(tx, bytes(tx), preflight=True)

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
            self.drift.faults = faults

    def info(self) -> dict[str, Any]:
        """What the node is: USDC mint, faucet, Drift program and vault, slot duration."""
        from profitshare.chain.drift import program

        return {
            "usdcMint": str(self.usdc_mint),
            "usdcDecimals": USDC_DECIMALS,
            "faucet": str(self.faucet.pubkey()),
            "driftProgram": str(program.DRIFT_PROGRAM_ID),
            "driftVault": str(self.drift.vault),
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
        """Write accounts, transactions, emulated Drift state and the clock to ``path`` (JSON)."""
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
                "drift": self.drift.to_json(),
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
        node = cls(slot_ms=slot_ms, pnl_pool=0, seed=bytes.fromhex(state["genesisSeed"]))
        ledger = node.ledger
        ledger.genesis_unix = state["genesisUnix"]
        node.faucet = Keypair.from_bytes(base64.b64decode(state["faucet"]))
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
        node.drift.load_json(state["drift"])
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
