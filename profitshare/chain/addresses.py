"""Solana address parsing and the USDC associated token account (ATA) of an owner.

Rules: a Solana address is the base58 encoding of 32 bytes (Solana docs, "Accounts");
an owner's ATA for a mint is the PDA of ``[owner, token_program, mint]`` under the Associated
Token Account program (SPL docs, "Associated Token Account"), computed by
``spl.token.instructions.get_associated_token_address``. Seed 000 #5: an invalid creator address
is a clear, voidable failure (``InvalidAddress``, code ``invalid_creator_wallet``).
"""

from __future__ import annotations

from functools import lru_cache

import base58
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYS_PROGRAM_ID
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from profitshare.chain.errors import InvalidAddress

__all__ = ["parse_address", "usdc_ata", "BASE58_ALPHABET"]

#: Bitcoin base58 alphabet, which Solana uses (no 0, O, I, l).
BASE58_ALPHABET = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


def parse_address(value: object, *, require_on_curve: bool = False) -> Pubkey:
    """Parse a base58 Solana address into a ``Pubkey``.

    ``value``: the address as text (a ``Pubkey`` is returned as is). ``require_on_curve``: also
    refuse off-curve addresses (PDAs); off by default, since a multisig vault (a PDA) may own
    tokens. Raises ``InvalidAddress(value, why)`` when: not a string, empty, surrounded by
    whitespace, containing a character outside the base58 alphabet, not decoding to exactly 32
    bytes, the all-zero address (the System Program: tokens sent there are lost), or off-curve
    when ``require_on_curve``. Nothing is stripped or corrected silently.
    """
    if isinstance(value, Pubkey):
        pubkey = value
    else:
        if not isinstance(value, str):
            raise InvalidAddress(value, f"expected a base58 string, got {type(value).__name__}")
        if value == "":
            raise InvalidAddress(value, "empty")
        if value != value.strip():
            raise InvalidAddress(value, "surrounding whitespace")
        bad = sorted(set(value) - BASE58_ALPHABET)
        if bad:
            raise InvalidAddress(value, f"not base58 (characters {''.join(bad)!r})")
        raw = base58.b58decode(value)
        if len(raw) != 32:
            raise InvalidAddress(value, f"decodes to {len(raw)} bytes, not 32")
        pubkey = Pubkey(raw)
    if pubkey == Pubkey.default():
        raise InvalidAddress(str(pubkey), "the all-zero (System Program) address cannot own tokens")
    if require_on_curve and not pubkey.is_on_curve():
        raise InvalidAddress(str(pubkey), "off-curve (a program-derived address)")
    return pubkey


@lru_cache(maxsize=65_536)
def usdc_ata(owner: Pubkey, mint: Pubkey) -> Pubkey:
    """The associated token account of ``owner`` for ``mint`` under the classic SPL Token program.

    Pure (no RPC); the account may not exist yet. ``owner``, ``mint``: ``Pubkey``. Cached: the
    derivation (``find_program_address``) costs more than signing a transaction.
    """
    return get_associated_token_address(owner, mint)


def create_ata_idempotent_ix(payer: Pubkey, owner: Pubkey, mint: Pubkey) -> Instruction:
    """The Associated Token Account program's ``CreateIdempotent`` (instruction 1) of ``owner``'s
    ATA for ``mint``, rent paid by ``payer`` (SPL ATA docs: a no-op when it exists). Same bytes
    as spl's ``create_idempotent_associated_token_account``, with the cached derivation."""
    return Instruction(
        ASSOCIATED_TOKEN_PROGRAM_ID,
        b"\x01",
        [
            AccountMeta(payer, is_signer=True, is_writable=True),
            AccountMeta(usdc_ata(owner, mint), is_signer=False, is_writable=True),
            AccountMeta(owner, is_signer=False, is_writable=False),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(SYS_PROGRAM_ID, is_signer=False, is_writable=False),
            AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        ],
    )
