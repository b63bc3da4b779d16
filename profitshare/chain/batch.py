"""Batched chain primitives for the engine: many wallets, many signatures per RPC call.

``getMultipleAccounts`` takes 100 keys and ``getSignatureStatuses`` 256 signatures per call
(Solana RPC limits); a batch of payouts costs a few RPC calls per phase instead of a few per
payout. Mixed into ``ChainGateway``.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from solana.rpc.commitment import Finalized
from solders.pubkey import Pubkey
from solders.token.state import TokenAccount
from spl.token.constants import TOKEN_PROGRAM_ID

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.errors import RpcUnavailable, SendOutcomeUnknown
from profitshare.chain.rpc import RpcPool
from profitshare.chain.transactions import SignatureStatus, SignedTransaction, Transactions

Address = Pubkey | str


@dataclass(frozen=True)
class Simulation:
    """A ``simulateTransaction`` answer: ``err`` (TransactionError JSON or None), ``logs``,
    ``units`` (compute units consumed), ``accounts`` (raw UiAccount JSON, or None, of each
    address asked for, after the transaction; empty when it failed) and ``context_slot`` (the
    slot the simulating node had reached). A simulation is advice, never a record: nothing it
    says was sent or landed."""

    err: object
    logs: tuple[str, ...]
    units: int
    accounts: tuple[dict | None, ...]
    context_slot: int

    def token_amount(self, index: int) -> int | None:
        """Base units held by the ``index``-th asked-for account after the simulated
        transaction if it is an SPL token account; None when it does not exist or is not."""
        account = self.accounts[index] if index < len(self.accounts) else None
        if account is None or account.get("owner") != str(TOKEN_PROGRAM_ID):
            return None
        return TokenAccount.from_bytes(base64.b64decode(account["data"][0])).amount


@dataclass(frozen=True)
class WalletState:
    """An owner's ``lamports`` and the base units in its USDC ATA (``usdc``; None: no ATA)."""

    lamports: int
    usdc: int | None


class BatchOps:
    """Batched reads, statuses and sends (mixed into ``ChainGateway``)."""

    pool: RpcPool
    transactions: Transactions
    usdc_mint: Pubkey

    def wallet_states(self, owners: list[Address]) -> dict[str, WalletState]:
        """``{owner: WalletState}`` for every owner (lamports; USDC ATA balance or None)."""
        keys = [parse_address(o) for o in owners]
        wanted = []
        for key in keys:
            wanted += [key, usdc_ata(key, self.usdc_mint)]
        accounts = self.multiple_accounts(wanted)
        states = {}
        for n, key in enumerate(keys):
            wallet, ata = accounts[2 * n], accounts[2 * n + 1]
            usdc = None
            if ata is not None and ata["owner"] == str(TOKEN_PROGRAM_ID):
                usdc = TokenAccount.from_bytes(base64.b64decode(ata["data"][0])).amount
            states[str(key)] = WalletState(0 if wallet is None else int(wallet["lamports"]), usdc)
        return states

    def multiple_accounts(self, keys: list[Pubkey]) -> list[dict | None]:
        """``getMultipleAccounts`` (base64) in chunks of 100; raw JSON values in order."""
        out: list[dict | None] = []
        for start in range(0, len(keys), 100):
            chunk = [str(k) for k in keys[start : start + 100]]
            result = self.pool.call("getMultipleAccounts", chunk, {"encoding": "base64", "commitment": "confirmed"})
            out += result["value"]
        return out

    def statuses(self, signatures: list[str]) -> dict[str, SignatureStatus]:
        """``{signature: SignatureStatus}`` by ``getSignatureStatuses`` in chunks of 256."""
        out: dict[str, SignatureStatus] = {}
        for start in range(0, len(signatures), 256):
            chunk = signatures[start : start + 256]
            result = self.pool.call("getSignatureStatuses", chunk, {"searchTransactionHistory": True})
            for signature, status in zip(chunk, result["value"], strict=True):
                out[signature] = _status_from_json(status)
        return out

    def wait_for(
        self, pending: dict[str, int], *, timeout: float, poll: float = 0.05
    ) -> dict[str, SignatureStatus]:
        """Poll until each signature (``{signature: last_valid_block_height}``) is decided:
        ``{signature: SignatureStatus}`` with state landed or failed, ``expired`` (finalized
        height past its last valid block height and still unknown: it can never land), or
        ``unknown`` at ``timeout``. The height is read before the statuses, so a last-block
        landing is never "expired"."""
        decided: dict[str, SignatureStatus] = {}
        waiting = dict(pending)
        deadline = time.monotonic() + timeout
        while waiting:
            height = self.transactions.block_height(Finalized)
            for signature, status in self.statuses(list(waiting)).items():
                if status.state != "unknown":
                    decided[signature] = status
                    del waiting[signature]
                elif height > waiting[signature]:
                    decided[signature] = SignatureStatus("expired")
                    del waiting[signature]
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(poll)
        decided.update({signature: SignatureStatus("unknown") for signature in waiting})
        return decided

    def simulate_many(
        self, signed: list[SignedTransaction], accounts: dict[str, list[Pubkey]] | None = None
    ) -> dict[str, Simulation | Exception]:
        """``simulateTransaction`` of each signed transaction (as signed: its own blockhash,
        signature verification off, ``confirmed``), 100 per JSON-RPC batch. ``accounts``:
        ``{signature: [address, ...]}`` whose post-transaction state to return. Returns
        ``{signature: Simulation}``, or the ``RpcRequestError`` a node answered for one (e.g.
        a malformed transaction). Raises ``RpcUnavailable`` when no endpoint answers."""
        accounts = accounts or {}
        out: dict[str, Simulation | Exception] = {}
        for start in range(0, len(signed), 100):
            chunk = signed[start : start + 100]
            params = []
            for tx in chunk:
                config: dict = {
                    "encoding": "base64", "sigVerify": False, "replaceRecentBlockhash": False,
                    "commitment": "confirmed",
                }
                if accounts.get(tx.signature):
                    config["accounts"] = {"encoding": "base64", "addresses": [str(a) for a in accounts[tx.signature]]}
                params.append([base64.b64encode(tx.raw).decode(), config])
            for tx, answer in zip(chunk, self.pool.call_batch("simulateTransaction", params), strict=True):
                if isinstance(answer, Exception):
                    out[tx.signature] = answer
                    continue
                value = answer["value"]
                out[tx.signature] = Simulation(
                    err=value.get("err"), logs=tuple(value.get("logs") or ()),
                    units=int(value.get("unitsConsumed") or 0), accounts=tuple(value.get("accounts") or ()),
                    context_slot=int(answer["context"]["slot"]),
                )
        return out

    def send_signed(self, signed: SignedTransaction) -> None:
        """Send signed bytes once; errors as ``Transactions.send``."""
        self.transactions.send(signed)

    def send_many(self, signed: list[SignedTransaction]) -> dict[str, Exception | None]:
        """Send many signed transactions, one JSON-RPC batch per 100; ``{signature: None or
        the refusal}`` (see ``Transactions.send_many``). A chunk whose answer was lost maps each
        of its signatures to ``SendOutcomeUnknown``; one no endpoint took, to ``RpcUnavailable``."""
        out: dict[str, Exception | None] = {}
        for start in range(0, len(signed), 100):
            chunk = signed[start : start + 100]
            try:
                out.update(self.transactions.send_many(chunk))
            except (SendOutcomeUnknown, RpcUnavailable) as exc:
                out.update({tx.signature: exc for tx in chunk})
        return out


def _status_from_json(status: dict | None) -> SignatureStatus:
    if not status:
        return SignatureStatus("unknown")
    level, err, slot = status.get("confirmationStatus"), status.get("err"), status.get("slot")
    if level not in ("confirmed", "finalized"):
        return SignatureStatus("unknown", slot, err, level)
    return SignatureStatus("landed" if err is None else "failed", slot, err, level)
