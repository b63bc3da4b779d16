"""A landed transaction as the chain recorded it: one parser of ``getTransaction`` answers.

Every reader of what a transaction did (what a withdraw delivered, what a payout moved, what
left an agent wallet behind our back) reads a ``LandedTransaction`` instead of the RPC's JSON:
account keys (loaded addresses included), lamports before and after, token balances before and
after, the fee and the error. Amounts are integers: lamports, and token base units from
``uiTokenAmount.amount`` (never the float ``uiAmount``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LandedTransaction", "TokenBalance", "parse_transaction"]


@dataclass(frozen=True)
class TokenBalance:
    """A token account's balance in a transaction: ``account`` (address), ``mint``, ``owner``
    (address, "" when the node does not say) and ``amount`` (base units)."""

    account: str
    mint: str
    owner: str
    amount: int


@dataclass(frozen=True)
class LandedTransaction:
    """``signature``, ``slot``, ``block_time`` (unix seconds or None), ``err`` (TransactionError
    JSON or None), ``fee`` (lamports), ``account_keys`` (static keys then loaded addresses),
    ``signers`` (the first ``numRequiredSignatures`` keys), ``pre_lamports`` / ``post_lamports``
    (by account) and ``pre_tokens`` / ``post_tokens`` (by token account address)."""

    signature: str
    slot: int
    block_time: int | None
    err: Any
    fee: int
    account_keys: tuple[str, ...]
    signers: tuple[str, ...]
    pre_lamports: dict[str, int] = field(default_factory=dict)
    post_lamports: dict[str, int] = field(default_factory=dict)
    pre_tokens: dict[str, TokenBalance] = field(default_factory=dict)
    post_tokens: dict[str, TokenBalance] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """Landed without an error (a failed transaction moves nothing but its fee)."""
        return self.err is None

    def token_change(self, account: str) -> int:
        """Base units ``account`` gained (negative: lost) in this transaction; 0 if untouched."""
        before = self.pre_tokens.get(account)
        after = self.post_tokens.get(account)
        return (after.amount if after else 0) - (before.amount if before else 0)

    def lamport_change(self, account: str) -> int:
        """Lamports ``account`` gained (negative: lost), the fee included; 0 if untouched."""
        return self.post_lamports.get(account, 0) - self.pre_lamports.get(account, 0)

    def token_accounts(self) -> dict[str, TokenBalance]:
        """Every token account the transaction shows, by address (its latest known balance)."""
        return {**self.pre_tokens, **self.post_tokens}


def parse_transaction(signature: str, tx: dict) -> LandedTransaction:
    """Parse a ``getTransaction`` answer (``json`` encoding, any transaction version).

    Raises ``ValueError`` when the answer has no ``meta`` or its balance lists do not match its
    account keys (a node answering something else)."""
    meta = tx.get("meta")
    if not meta:
        raise ValueError(f"transaction {signature} has no meta")
    message = (tx.get("transaction") or {}).get("message") or {}
    keys = [k if isinstance(k, str) else k.get("pubkey", "") for k in message.get("accountKeys") or []]
    loaded = meta.get("loadedAddresses") or {}
    keys += list(loaded.get("writable") or []) + list(loaded.get("readonly") or [])
    header = message.get("header") or {}
    signers = tuple(keys[: int(header.get("numRequiredSignatures", 1))])
    pre, post = list(meta.get("preBalances") or []), list(meta.get("postBalances") or [])
    if len(pre) != len(post) or len(pre) > len(keys):
        raise ValueError(f"transaction {signature}: balances do not match its account keys")

    def tokens(entries) -> dict[str, TokenBalance]:
        out = {}
        for entry in entries or []:
            index = int(entry["accountIndex"])
            if index >= len(keys):
                raise ValueError(f"transaction {signature}: token balance of account {index} out of range")
            out[keys[index]] = TokenBalance(
                keys[index], entry["mint"], entry.get("owner") or "", int(entry["uiTokenAmount"]["amount"])
            )
        return out

    return LandedTransaction(
        signature=signature,
        slot=int(tx.get("slot") or 0),
        block_time=tx.get("blockTime"),
        err=meta.get("err"),
        fee=int(meta.get("fee") or 0),
        account_keys=tuple(keys),
        signers=signers,
        pre_lamports={keys[i]: int(v) for i, v in enumerate(pre)},
        post_lamports={keys[i]: int(v) for i, v in enumerate(post)},
        pre_tokens=tokens(meta.get("preTokenBalances")),
        post_tokens=tokens(meta.get("postTokenBalances")),
    )
