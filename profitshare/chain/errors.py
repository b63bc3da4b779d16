"""Typed errors of the chain gateway (``profitshare.chain``).

Every error has a stable ``code`` string: the engine stores it as an IOU / distribution reason
code, so codes never change once released. Amounts carried by errors are integers (lamports for
SOL, USDC base units with 6 decimals for USDC). Signatures are base58 strings.

Which operations may be retried is decided by the caller from the type:

* ``RpcUnavailable``: nothing was learned from any endpoint; a read may be tried again later.
  From a *send*, it means every endpoint refused the bytes with HTTP 429/503 or could not be
  connected to; the engine still resolves the payout by its signature (recorded before sending).
* ``SendOutcomeUnknown``: the signed bytes may have reached a node. Never sign a new transaction
  for it until ``BatchOps.wait_for`` decides it ``expired`` (a caught-up node past its last valid
  block height did not find it: docs/design.md, "Exactly once", "Expired only from a caught-up
  node").
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChainError",
    "RpcUnavailable",
    "RpcRequestError",
    "SendOutcomeUnknown",
    "InsufficientSol",
    "InsufficientUsdc",
    "WithdrawShort",
    "WithdrawFailed",
    "SettleFailed",
    "BlockhashExpired",
    "InvalidAddress",
    "TransactionFailed",
    "TokenAccountMissing",
    "DriftSubaccountMissing",
]


class ChainError(Exception):
    """Base of every error the chain gateway raises. ``code``: stable reason code (str)."""

    code = "chain_error"


class RpcUnavailable(ChainError):
    """Every RPC endpoint failed (HTTP 429/5xx, timeouts, connection errors) after all retries.

    ``method``: the JSON-RPC method; ``failures``: ``[(url, description), ...]`` of the attempts;
    ``signature``: set when the call was a ``sendTransaction`` (see the module docstring).
    """

    code = "rpc_unavailable"

    def __init__(
        self, method: str, failures: list[tuple[str, str]], signature: str | None = None
    ) -> None:
        self.method = method
        self.failures = list(failures)
        self.signature = signature
        last = failures[-1][1] if failures else "no endpoint configured"
        super().__init__(f"{method}: all RPC endpoints failed after {len(failures)} tries ({last})")


class RpcRequestError(ChainError):
    """An endpoint answered a JSON-RPC error object that retrying will not fix (e.g. -32602).

    ``method``: JSON-RPC method; ``rpc_code``: the JSON-RPC error code (int) or None;
    ``message``: the error message; ``data``: the error's ``data`` member (JSON) or None.
    """

    code = "rpc_error"

    def __init__(self, method: str, rpc_code: int | None, message: str, data: Any = None) -> None:
        self.method = method
        self.rpc_code = rpc_code
        self.message = message
        self.data = data
        super().__init__(f"{method}: RPC error {rpc_code}: {message}")


class SendOutcomeUnknown(ChainError):
    """A ``sendTransaction`` whose response was lost or timed out: it may or may not land.

    Never retried blindly; resolve by its signature with ``BatchOps.wait_for``.
    ``signature``: base58 signature of the transaction; ``why``: what happened.
    """

    code = "send_outcome_unknown"

    def __init__(self, signature: str, why: str = "") -> None:
        self.signature = signature
        self.why = why
        super().__init__(f"outcome of {signature} unknown: {why}")


class InsufficientSol(ChainError):
    """The payer has fewer lamports than the payout needs (docs/design.md, "SOL pre-flight").

    ``needed_lamports``, ``available_lamports``: ints.
    """

    code = "insufficient_sol"

    def __init__(self, needed_lamports: int, available_lamports: int) -> None:
        self.needed_lamports = needed_lamports
        self.available_lamports = available_lamports
        super().__init__(f"needs {needed_lamports} lamports, has {available_lamports}")


class InsufficientUsdc(ChainError):
    """The agent's USDC token account holds less than the payout (docs/design.md, "Measure what arrived": the SPL token
    account balance, not Drift collateral). ``needed``, ``available``: USDC base units."""

    code = "insufficient_usdc"

    def __init__(self, needed: int, available: int) -> None:
        self.needed = needed
        self.available = available
        super().__init__(f"needs {needed} USDC base units, token account has {available}")


class WithdrawShort(ChainError):
    """A Drift withdraw landed but delivered less than requested (docs/design.md, "Measure what arrived").

    ``requested``, ``delivered``: USDC base units measured on the agent's token account;
    ``signature``: the landed withdraw. Raised only when the caller asks for strictness.
    """

    code = "withdraw_short"

    def __init__(self, requested: int, delivered: int, signature: str) -> None:
        self.requested = requested
        self.delivered = delivered
        self.signature = signature
        super().__init__(f"withdraw {signature} delivered {delivered} of {requested}")


class WithdrawFailed(ChainError):
    """A Drift withdraw did not move funds. ``reason``: Drift error name (e.g.
    ``"DailyWithdrawLimit"``) or another description; ``signature``: the failed transaction if
    one landed (fee charged) or was sent, else None (refused by preflight)."""

    code = "withdraw_failed"

    def __init__(self, reason: str, signature: str | None = None) -> None:
        self.reason = reason
        self.signature = signature
        super().__init__(f"withdraw failed: {reason} ({signature or 'not landed'})")


class SettleFailed(ChainError):
    """A Drift ``settlePnl`` failed. ``reason``: Drift error name (e.g.
    ``"InsufficientCollateralForSettlingPNL"``); ``signature``: as in ``WithdrawFailed``."""

    code = "settle_failed"

    def __init__(self, reason: str, signature: str | None = None) -> None:
        self.reason = reason
        self.signature = signature
        super().__init__(f"settlePnl failed: {reason} ({signature or 'not landed'})")


class BlockhashExpired(ChainError):
    """The transaction's blockhash is past its last valid block height (Solana RPC docs,
    ``getLatestBlockhash``/``isBlockhashValid``); it can no longer land. ``signature``: base58
    or None; ``last_valid_block_height``: int or None."""

    code = "blockhash_expired"

    def __init__(self, signature: str | None = None, last_valid_block_height: int | None = None) -> None:
        self.signature = signature
        self.last_valid_block_height = last_valid_block_height
        super().__init__(
            f"blockhash of {signature or 'transaction'} expired "
            f"(last valid block height {last_valid_block_height})"
        )


class InvalidAddress(ChainError):
    """Not a Solana address: empty, not base58, or not 32 bytes. ``value``: what was given;
    ``why``: which rule failed. Code ``invalid_creator_wallet`` (docs/design.md, "Invalid creator address": a voidable IOU)."""

    code = "invalid_creator_wallet"

    def __init__(self, value: object, why: str) -> None:
        self.value = value
        self.why = why
        super().__init__(f"invalid address {value!r}: {why}")


class TransactionFailed(ChainError):
    """A transaction was refused by preflight or landed with an error.

    ``signature``: base58; ``err``: Solana's TransactionError JSON (e.g.
    ``{"InstructionError": [2, {"Custom": 1}]}``); ``logs``: program logs (list of str).
    """

    code = "transaction_failed"

    def __init__(self, signature: str, err: Any, logs: list[str] | None = None) -> None:
        self.signature = signature
        self.err = err
        self.logs = list(logs or [])
        super().__init__(f"transaction {signature} failed: {err}")


class TokenAccountMissing(ChainError):
    """No SPL token account exists at ``pubkey`` (base58 str)."""

    code = "token_account_missing"

    def __init__(self, pubkey: str) -> None:
        self.pubkey = pubkey
        super().__init__(f"no token account at {pubkey}")


class DriftSubaccountMissing(ChainError):
    """No Drift subaccount ``subaccount_id`` exists for ``authority`` (base58 str)."""

    code = "drift_subaccount_missing"

    def __init__(self, authority: str, subaccount_id: int) -> None:
        self.authority = authority
        self.subaccount_id = subaccount_id
        super().__init__(f"no Drift subaccount {subaccount_id} for {authority}")
