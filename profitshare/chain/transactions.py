"""Signing, sending, status and confirmation of transactions (shared by payouts and Drift).

Rules (Solana RPC docs: ``getLatestBlockhash``, ``sendTransaction``, ``getSignatureStatuses``,
``getBlockHeight``; "Transaction confirmation & expiration"):

* a transaction carries a recent blockhash and can land only while the block height is at most
  that blockhash's ``lastValidBlockHeight``; its signature (the fee payer's) is fixed at signing,
  so it is known, and can be recorded, before the first send;
* a signature is *landed* when its status is ``confirmed`` or ``finalized`` with no error,
  *failed* when ``confirmed``/``finalized`` with an error (the fee is charged, nothing else
  happens), otherwise *unknown* (never seen, or only ``processed``);
* a transaction is *expired* when the **finalized** block height is past its last valid block
  height: no fork can include it any more, so (and only then) an unlanded payout may be replaced
  by a newly signed one (docs/design.md, "Exactly once"). Using finalized rather than confirmed height
  costs ~13 s of extra waiting on a real cluster and rules out a fork landing the old bytes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from solana.rpc.commitment import Confirmed, Finalized
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from profitshare.chain.drift import program as drift_program
from profitshare.chain.errors import (
    BlockhashExpired,
    RpcRequestError,
    SendOutcomeUnknown,
    TransactionFailed,
)
from profitshare.chain.rpc import RpcPool

__all__ = [
    "MAX_TRANSACTION_BYTES",
    "SEND_PREFLIGHT_FAILURE",
    "SIGNATURE_VERIFICATION_FAILURE",
    "RecentBlockhash",
    "SignedTransaction",
    "SignatureStatus",
    "Transactions",
    "sign_transaction",
    "describe_error",
    "program_ids_of",
]

#: Solana's limit for a serialized transaction (bytes, the packet data size).
MAX_TRANSACTION_BYTES = 1232
#: JSON-RPC error codes of sendTransaction (Solana RPC: JSON_RPC_SERVER_ERROR_*).
SEND_PREFLIGHT_FAILURE = -32002
SIGNATURE_VERIFICATION_FAILURE = -32003


@dataclass(frozen=True)
class RecentBlockhash:
    """``blockhash`` (solders ``Hash``) and its ``last_valid_block_height`` (int)."""

    blockhash: Hash
    last_valid_block_height: int


@dataclass(frozen=True)
class SignedTransaction:
    """A signed legacy transaction: ``signature`` (base58), ``raw`` wire bytes, ``blockhash``
    (base58), ``last_valid_block_height``, and ``program_ids`` (program of each instruction, in
    order, to name instruction errors)."""

    signature: str
    raw: bytes
    blockhash: str
    last_valid_block_height: int
    program_ids: tuple[Pubkey, ...]


@dataclass(frozen=True)
class SignatureStatus:
    """The fate of a signature, the one answer every reader of statuses gets: ``state``
    ``"landed"`` (confirmed without error), ``"failed"`` (landed with ``err``), ``"expired"``
    (never landed and never can: its blockhash is past its last valid block height; only
    ``BatchOps.wait_for`` decides this) or ``"unknown"`` (not seen, or not confirmed yet);
    ``slot`` (int or None); ``err`` (Solana TransactionError JSON or None);
    ``confirmation_status`` (``"processed"``/``"confirmed"``/``"finalized"`` or None).
    ``decided``: landed, failed or expired."""

    state: Literal["landed", "failed", "expired", "unknown"]
    slot: int | None = None
    err: Any = None
    confirmation_status: str | None = None

    @property
    def decided(self) -> bool:
        """True once the chain has settled this signature's fate (landed, failed, expired)."""
        return self.state != "unknown"


def sign_transaction(
    payer: Keypair, instructions: Sequence[Instruction], recent: RecentBlockhash
) -> SignedTransaction:
    """Sign ``instructions`` as a legacy transaction paid and signed by ``payer`` only.

    Pure (no RPC). Raises ``ValueError`` if the serialized transaction exceeds 1,232 bytes.
    """
    message = Message(list(instructions), payer.pubkey())
    tx = Transaction([payer], message, recent.blockhash)
    raw = bytes(tx)
    if len(raw) > MAX_TRANSACTION_BYTES:
        raise ValueError(f"transaction is {len(raw)} bytes, over Solana's {MAX_TRANSACTION_BYTES}")
    return SignedTransaction(
        signature=str(tx.signatures[0]),
        raw=raw,
        blockhash=str(recent.blockhash),
        last_valid_block_height=recent.last_valid_block_height,
        program_ids=tuple(ix.program_id for ix in instructions),
    )


def program_ids_of(raw: bytes) -> tuple[Pubkey, ...]:
    """The program of each instruction of a signed legacy transaction's wire bytes ``raw``, in
    order (to name an instruction error, see ``describe_error``). Raises ``ValueError`` on bytes
    that are not a transaction."""
    try:
        message = Transaction.from_bytes(bytes(raw)).message
    except Exception as exc:  # solders raises its own parse error type
        raise ValueError(f"not a transaction: {exc}") from exc
    keys = message.account_keys
    return tuple(keys[ix.program_id_index] for ix in message.instructions)


def describe_error(err: Any, program_ids: Sequence[Pubkey] = ()) -> str:
    """A short, stable name for a TransactionError JSON.

    ``{"InstructionError": [i, {"Custom": n}]}`` where instruction ``i`` is Drift's becomes the
    Drift IDL error name (e.g. ``"InsufficientCollateral"`` for 6003); other custom errors become
    ``"Custom(n) in instruction i"``; named errors keep their name (``"BlockhashNotFound"``,
    ``"InsufficientFundsForRent"``).
    """
    if isinstance(err, str):
        return err
    if isinstance(err, dict) and len(err) == 1:
        (name, value), = err.items()
        if name == "InstructionError" and isinstance(value, list) and len(value) == 2:
            index, inner = value
            if isinstance(inner, dict) and "Custom" in inner:
                code = inner["Custom"]
                is_drift = (
                    isinstance(index, int)
                    and 0 <= index < len(program_ids)
                    and program_ids[index] == drift_program.DRIFT_PROGRAM_ID
                )
                if is_drift and drift_program.error_name(code):
                    return drift_program.error_name(code)
                return f"Custom({code}) in instruction {index}"
            return f"{inner if isinstance(inner, str) else inner!r} in instruction {index}"
        return name
    return repr(err)


class Transactions:
    """Send, status and confirmation over an ``RpcPool``.

    ``poll_interval``: seconds between status polls in ``confirm``.
    """

    def __init__(self, pool: RpcPool, *, poll_interval: float = 0.5) -> None:
        self.pool = pool
        self.poll_interval = poll_interval

    def latest_blockhash(self) -> RecentBlockhash:
        """``getLatestBlockhash`` at ``confirmed``: blockhash and last valid block height."""
        value = self.pool.read(
            "getLatestBlockhash", lambda c: c.get_latest_blockhash(Confirmed).value
        )
        return RecentBlockhash(value.blockhash, value.last_valid_block_height)

    def block_height(self, commitment=Confirmed) -> int:
        """``getBlockHeight`` at ``commitment`` (default ``confirmed``)."""
        return self.pool.read("getBlockHeight", lambda c: c.get_block_height(commitment).value)

    def is_expired(self, last_valid_block_height: int) -> bool:
        """True when the finalized block height is past ``last_valid_block_height``: a transaction
        with that blockhash can no longer land (see the module docstring)."""
        return self.block_height(Finalized) > last_valid_block_height

    def signature_status(self, signature: str) -> SignatureStatus:
        """``getSignatureStatuses([signature], {searchTransactionHistory: true})`` as a
        ``SignatureStatus`` (landed / failed need ``confirmed`` or ``finalized``).

        Raw JSON-RPC (not solana-py) so ``err`` stays Solana's JSON form, which we store.
        Raises ``ValueError`` on a malformed signature, ``RpcUnavailable`` / ``RpcRequestError``.
        """
        Signature.from_string(signature)  # ValueError on a malformed signature
        result = self.pool.call(
            "getSignatureStatuses", [signature], {"searchTransactionHistory": True}
        )
        values = (result or {}).get("value") or [None]
        status = values[0]
        if not status:
            return SignatureStatus("unknown")
        level = status.get("confirmationStatus")
        err = status.get("err")
        slot = status.get("slot")
        if level not in ("confirmed", "finalized"):
            return SignatureStatus("unknown", slot, err, level)
        return SignatureStatus("landed" if err is None else "failed", slot, err, level)

    def send(self, signed: SignedTransaction) -> None:
        """Send ``signed.raw`` once (preflight on). Returns when a node accepted it.

        Raises ``BlockhashExpired`` (preflight ``BlockhashNotFound``), ``TransactionFailed``
        (preflight simulation error or bad signature; nothing landed, no fee),
        ``SendOutcomeUnknown`` (response lost), ``RpcUnavailable`` (no endpoint took it),
        ``RpcRequestError`` (another JSON-RPC error). ``AlreadyProcessed`` (the same bytes
        landed before) returns normally: the signature is on chain.
        """
        try:
            self.pool.send_transaction(signed.raw, signed.signature)
        except RpcRequestError as exc:
            refusal = _refusal(signed, exc)
            if refusal is not None:
                raise refusal from exc

    def send_many(self, signed: Sequence[SignedTransaction]) -> dict[str, Exception | None]:
        """Send many transactions in one JSON-RPC batch: ``{signature: None}`` when a node took
        it (or it landed before), else the exception ``send`` would raise for it
        (``BlockhashExpired``, ``TransactionFailed``, ``RpcRequestError``). A batch whose answer
        was lost raises ``SendOutcomeUnknown``; none taken: ``RpcUnavailable``."""
        answers = self.pool.send_transactions([(tx.raw, tx.signature) for tx in signed])
        out: dict[str, Exception | None] = {}
        for tx, error in zip(signed, answers, strict=True):
            out[tx.signature] = None if error is None else _refusal(tx, error)
        return out

    def confirm(
        self, signature: str, last_valid_block_height: int, timeout: float
    ) -> SignatureStatus:
        """Poll until ``signature`` is landed (returned), failed, or can no longer land.

        Raises ``TransactionFailed`` (landed with an error; logs from ``getTransaction``),
        ``BlockhashExpired`` (finalized block height passed ``last_valid_block_height`` and the
        signature is unknown: it will never land), ``SendOutcomeUnknown`` (``timeout`` seconds
        passed first: still undecided). The block height is read *before* the status, so a
        transaction landing in the last valid block is never reported as expired.
        """
        deadline = time.monotonic() + timeout
        while True:
            expired = self.is_expired(last_valid_block_height)
            status = self.signature_status(signature)
            if status.state == "landed":
                return status
            if status.state == "failed":
                raise TransactionFailed(signature, status.err, self._logs(signature))
            if expired:
                raise BlockhashExpired(signature, last_valid_block_height)
            if time.monotonic() >= deadline:
                raise SendOutcomeUnknown(signature, f"not confirmed within {timeout} s")
            time.sleep(self.poll_interval)

    def get_transaction(self, signature: str) -> dict | None:
        """``getTransaction`` (json encoding, ``confirmed``, v0 allowed) as raw JSON, or None."""
        return self.pool.call(
            "getTransaction",
            signature,
            {"encoding": "json", "commitment": "confirmed", "maxSupportedTransactionVersion": 0},
        )

    def _logs(self, signature: str) -> list[str]:
        tx = self.get_transaction(signature)
        if not tx:
            return []
        return list((tx.get("meta") or {}).get("logMessages") or [])


def _refusal(signed: SignedTransaction, exc: RpcRequestError) -> Exception | None:
    """What a send's JSON-RPC error means: None (``AlreadyProcessed``: it is on chain),
    ``BlockhashExpired``, ``TransactionFailed`` (preflight refusal or bad signature: nothing
    landed, no fee) or the ``RpcRequestError`` itself."""
    if exc.rpc_code == SIGNATURE_VERIFICATION_FAILURE:
        return TransactionFailed(signed.signature, "SignatureFailure")
    if exc.rpc_code != SEND_PREFLIGHT_FAILURE:
        return exc
    data = exc.data if isinstance(exc.data, dict) else {}
    err = data.get("err")
    if err == "AlreadyProcessed":
        return None
    if err == "BlockhashNotFound":
        return BlockhashExpired(signed.signature, signed.last_valid_block_height)
    return TransactionFailed(signed.signature, err, data.get("logs") or [])
