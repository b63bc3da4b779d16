"""Build and sign a USDC payout, and read a landed one back from the chain alone.

A payout is one legacy transaction, paid and signed by the subscriber's agent wallet
(docs/design.md, "Pay the creator's own wallet": any valid address can receive, it need not be an agent):

1. ``SetComputeUnitLimit(QV_PAYOUT_COMPUTE_UNIT_LIMIT``, plus ``fees.COMPUTE_UNITS_PER_EXTRA_LEG``
   per leg beyond the first) and ``SetComputeUnitPrice(QV_PRIORITY_FEE_MICROLAMPORTS)`` (Solana
   docs, "Compute budget");
2. ``CreateIdempotent`` of the creator's USDC associated token account, payer = the agent
   (SPL Associated Token Account docs: a no-op when it exists; when it does not, the payer funds
   its rent, 2,039,280 lamports for 165 bytes); left out when the caller knows it exists;
3. ``TransferChecked`` of ``amount`` base units, 6 decimals, from the agent's USDC ATA to the
   creator's (SPL Token docs: the mint and decimals are checked by the program), then one more
   ``TransferChecked`` per other leg of a split share (``more_legs``: the platform's and the
   referrers' accounts, which must exist: the subscriber pays the rent of the creator's only),
   so every leg lands in the one transaction or none does (docs/design.md, "All legs are paid
   together");
4. an SPL Memo (v2, no signer accounts: the transaction's signature covers it) carrying
   ``reference``: the engine's id for the payout
   (random when none is given). Without it, two payouts of the same amount from the same agent
   to the same creator signed with the same blockhash would be byte-identical (ed25519
   signatures are deterministic), share one signature and land once: one payout silently lost.
   The memo also lets a payout be matched to its distribution from the chain alone.

The **atomic** payout (docs/design.md, "A payout is one transaction where it can be") puts
Drift's ``settle_pnl`` for the close's market and Drift's ``withdraw`` of the missing USDC to the
agent's ATA between the compute budget and step 2: one signature, one fee, and all or nothing
(Solana runs a transaction's instructions atomically). ``SignedPayout.roles`` names each
instruction (``compute_budget``, ``settle``, ``create_agent_ata``, ``withdraw``,
``create_creator_ata``, ``transfer``, ``memo``) so a simulation's failing instruction index says
which step refused.

The signature and ``lastValidBlockHeight`` are known before sending, so the engine records them
durably first (docs/design.md, "Exactly once"); the same ``raw`` bytes may be re-broadcast until the
blockhash expires and can land at most once.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import base58
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    TransferCheckedParams,
    transfer_checked,
)

from profitshare.chain.addresses import create_ata_idempotent_ix, usdc_ata
from profitshare.chain.errors import ChainError
from profitshare.chain.landed import parse_transaction
from profitshare.chain.transactions import RecentBlockhash, SignedTransaction, sign_transaction

__all__ = [
    "USDC_DECIMALS",
    "SignedPayout",
    "LandedPayout",
    "LandedTransfer",
    "NotAPayout",
    "MAX_REFERENCE_BYTES",
    "new_reference",
    "payout_instructions",
    "sign_payout",
    "parse_landed_payout",
]

USDC_DECIMALS = 6
_U64_MAX = 2**64 - 1
_TRANSFER_CHECKED = 12  # SPL Token instruction tag (TokenInstruction::TransferChecked)
MAX_REFERENCE_BYTES = 64


class NotAPayout(ChainError):
    """The transaction is not a payout: no SPL ``TransferChecked``, or transfers spending more
    than one source token account or mint. ``signature``: str; ``why``: str."""

    code = "not_a_payout"

    def __init__(self, signature: str, why: str) -> None:
        self.signature = signature
        self.why = why
        super().__init__(f"{signature} is not a payout: {why}")


@dataclass(frozen=True)
class SignedPayout:
    """A signed, not yet sent payout.

    ``signature``: base58 (the agent's signature); ``raw``: wire bytes to send (and re-send
    unchanged); ``blockhash``: base58; ``last_valid_block_height``: int; ``amount``: USDC base
    units; ``source_ata``: the agent's USDC ATA; ``destination_owner``: the creator's wallet;
    ``destination_ata``: its USDC ATA; ``source_owner``: the agent; ``mint``: USDC mint
    (all ``Pubkey``); ``reference``: the memo text (str); ``legs``: ``((owner, base units),
    ...)``, one transfer each, the first to ``destination_owner``, ``amount`` their sum; ``roles``: what each instruction is
    (see the module docstring); ``program_ids``: each instruction's program; ``settles``: the
    transaction settles PnL on Drift; ``withdraw_amount``: base units it withdraws from Drift
    (0: none).
    """

    signature: str
    raw: bytes
    blockhash: str
    last_valid_block_height: int
    amount: int
    source_ata: Pubkey
    destination_owner: Pubkey
    destination_ata: Pubkey
    source_owner: Pubkey
    mint: Pubkey
    reference: str
    roles: tuple[str, ...] = ()
    program_ids: tuple[Pubkey, ...] = ()
    settles: bool = False
    withdraw_amount: int = 0
    legs: tuple[tuple[Pubkey, int], ...] = ()

    @property
    def transaction(self) -> SignedTransaction:
        """The payout as the batch primitives send it (``BatchOps.send_many``)."""
        return SignedTransaction(
            self.signature, self.raw, self.blockhash, self.last_valid_block_height, self.program_ids
        )

    def failed_step(self, err: Any) -> str | None:
        """The role of the instruction a TransactionError JSON ``err`` names
        (``{"InstructionError": [index, ...]}``), or None when it names none."""
        if isinstance(err, dict) and isinstance(err.get("InstructionError"), list):
            index = err["InstructionError"][0]
            if isinstance(index, int) and 0 <= index < len(self.roles):
                return self.roles[index]
        return None


@dataclass(frozen=True)
class LandedTransfer:
    """One ``TransferChecked`` of a landed payout, as the chain records it.

    ``destination_owner``: the receiving wallet (``Pubkey``; None only if unknowable);
    ``destination_ata``: its token account (``Pubkey``); ``requested``: the instruction's
    amount; ``amount``: USDC base units the destination token account actually gained (post −
    pre token balance; 0 when the transaction failed). Balances are per transaction, not per
    instruction: a destination named by more than one transfer has its gain on the first of
    them and 0 on the others, so the transfers' ``amount`` still add up to what moved.
    """

    destination_owner: Pubkey | None
    destination_ata: Pubkey
    requested: int
    amount: int


@dataclass(frozen=True)
class LandedPayout:
    """A payout as the chain records it (``getTransaction``, json encoding).

    ``transfers``: every ``TransferChecked`` of the transaction (``LandedTransfer``), in
    instruction order: one per leg of a split share, the creator's first (docs/design.md, "All
    legs are paid together"). ``amount``, ``requested``, ``destination_owner`` and
    ``destination_ata`` are the first transfer's (see ``LandedTransfer``); ``total``: what all
    of them moved. ``mint``, ``source_owner``, ``source_ata``: ``Pubkey``, one for every
    transfer; ``fee_lamports``: fee charged; ``slot``: int; ``err``: TransactionError JSON or
    None; ``signature``: base58; ``reference``: the payout's memo text, or None if it has none.
    """

    signature: str
    amount: int
    requested: int
    mint: Pubkey
    source_owner: Pubkey | None
    source_ata: Pubkey
    destination_owner: Pubkey | None
    destination_ata: Pubkey
    fee_lamports: int
    slot: int
    err: Any
    reference: str | None = None
    transfers: tuple[LandedTransfer, ...] = ()

    @property
    def total(self) -> int:
        """USDC base units all the transfers' destinations gained (0 when the transaction failed)."""
        return sum(t.amount for t in self.transfers)


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= _U64_MAX:
        raise ValueError(f"amount must be an int in 1..2**64-1 (USDC base units), got {amount!r}")


def new_reference() -> str:
    """A random payout reference, ``"qv:" + 16 hex digits``."""
    return "qv:" + secrets.token_hex(8)


def _check_reference(reference: str) -> bytes:
    if not isinstance(reference, str) or not reference:
        raise ValueError(f"reference must be a non-empty str, got {reference!r}")
    encoded = reference.encode("utf-8")
    if len(encoded) > MAX_REFERENCE_BYTES:
        raise ValueError(f"reference is {len(encoded)} bytes, max {MAX_REFERENCE_BYTES}")
    return encoded


def payout_instructions(
    agent: Pubkey,
    creator_owner: Pubkey,
    mint: Pubkey,
    amount: int,
    reference: str,
    *,
    decimals: int = USDC_DECIMALS,
    compute_unit_limit: int,
    compute_unit_price: int,
    create_destination_ata: bool = True,
    drift: Sequence[tuple[str, Instruction]] = (),
    more_legs: Sequence[tuple[Pubkey, int]] = (),
) -> list[tuple[str, Instruction]]:
    """The instructions of a payout (see the module docstring), in order, each with its role.

    ``drift``: the atomic payout's Drift part, ``[(role, instruction)]`` (settle, the agent's
    ATA creation, withdraw), placed after the compute budget. ``more_legs``: ``[(owner, base
    units)]`` paid after ``creator_owner``'s ``amount``, one ``transfer_checked`` each, in order
    (their token accounts are not created: they must exist).

    ``amount``: USDC base units (int > 0). ``reference``: memo text, 1..64 UTF-8 bytes.
    ``compute_unit_price``: micro-lamports per CU; 0 omits the price instruction.
    ``create_destination_ata``: include the idempotent ATA creation (False when the caller
    knows the creator's ATA exists: it saves compute; if the ATA vanished the transfer fails
    and nothing moves).
    Raises ``ValueError`` on a bad amount or reference, or a recipient paid twice.
    """
    legs = [(creator_owner, amount), *more_legs]
    for _, leg_amount in legs:
        _check_amount(leg_amount)
    if len({owner for owner, _ in legs}) != len(legs):
        raise ValueError("a recipient appears in more than one leg")
    memo = _check_reference(reference)
    instructions = [("compute_budget", set_compute_unit_limit(compute_unit_limit))]
    if compute_unit_price:
        instructions.append(("compute_budget", set_compute_unit_price(compute_unit_price)))
    instructions += list(drift)
    if create_destination_ata:
        instructions.append(("create_creator_ata", create_ata_idempotent_ix(agent, creator_owner, mint)))
    instructions += [
        ("transfer", transfer_checked(TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID, source=usdc_ata(agent, mint), mint=mint, dest=usdc_ata(owner, mint),
            owner=agent, amount=leg_amount, decimals=decimals,
        )))
        for owner, leg_amount in legs
    ]
    # No signer accounts on the memo: the transaction's own signature already covers it, and
    # the Memo program's "Signed by" logging (base58 in BPF) costs ~13,000 compute units.
    instructions.append(("memo", Instruction(MEMO_PROGRAM_ID, memo, [])))
    return instructions


def sign_payout(
    agent_keypair: Keypair,
    creator_owner: Pubkey,
    mint: Pubkey,
    amount: int,
    recent: RecentBlockhash,
    *,
    reference: str | None = None,
    decimals: int = USDC_DECIMALS,
    compute_unit_limit: int,
    compute_unit_price: int,
    create_destination_ata: bool = True,
    drift: Sequence[tuple[str, Instruction]] = (),
    withdraw_amount: int = 0,
    more_legs: Sequence[tuple[Pubkey, int]] = (),
) -> SignedPayout:
    """Build and sign a payout of ``amount`` USDC base units to ``creator_owner``'s ATA (and of
    ``more_legs``, ``[(owner, base units)]``, to theirs: see ``payout_instructions``).

    Pure (no RPC): ``recent`` is the blockhash to sign with; ``reference``: memo text (default
    ``new_reference()``); ``drift``: the atomic payout's Drift instructions with their roles
    (see ``payout_instructions``) and ``withdraw_amount`` the base units its withdraw asks.
    Raises ``ValueError`` on a bad amount, a bad reference or an oversized transaction.
    """
    agent = agent_keypair.pubkey()
    reference = new_reference() if reference is None else reference
    instructions = payout_instructions(
        agent,
        creator_owner,
        mint,
        amount,
        reference,
        decimals=decimals,
        compute_unit_limit=compute_unit_limit,
        compute_unit_price=compute_unit_price,
        create_destination_ata=create_destination_ata,
        drift=drift,
        more_legs=more_legs,
    )
    signed = sign_transaction(agent_keypair, [ix for _, ix in instructions], recent)
    return SignedPayout(
        signature=signed.signature,
        raw=signed.raw,
        blockhash=signed.blockhash,
        last_valid_block_height=signed.last_valid_block_height,
        amount=amount + sum(leg_amount for _, leg_amount in more_legs),
        source_ata=usdc_ata(agent, mint),
        destination_owner=creator_owner,
        destination_ata=usdc_ata(creator_owner, mint),
        source_owner=agent,
        mint=mint,
        reference=reference,
        roles=tuple(role for role, _ in instructions),
        program_ids=signed.program_ids,
        settles=any(role == "settle" for role, _ in instructions),
        withdraw_amount=withdraw_amount,
        legs=((creator_owner, amount), *more_legs),
    )


def parse_landed_payout(tx: dict) -> LandedPayout:
    """Read a payout from a ``getTransaction`` answer (json encoding; Solana RPC docs).

    The intent comes from the message's SPL Token ``TransferChecked`` instructions (source,
    mint, destination, authority, amount; one per leg, in order) and ``CreateIdempotent`` (a
    destination's wallet); what moved comes from the destinations' token balances
    (``landed.parse_transaction``). Raises ``NotAPayout`` if there is no ``TransferChecked``, or
    if the transfers do not all spend one source token account of one mint.
    """
    signature = tx["transaction"]["signatures"][0]
    message = tx["transaction"]["message"]
    keys = [Pubkey.from_string(k) for k in message["accountKeys"]]
    meta = tx.get("meta") or {}
    transfers, ata_wallets, memos = [], {}, []
    for ix in message["instructions"]:
        program_id = keys[ix["programIdIndex"]]
        data = base58.b58decode(ix["data"])
        accounts = [keys[i] for i in ix["accounts"]]
        if program_id == TOKEN_PROGRAM_ID and data[:1] == bytes([_TRANSFER_CHECKED]) and len(accounts) >= 4:
            transfers.append((accounts, int.from_bytes(data[1:9], "little")))
        elif program_id == ASSOCIATED_TOKEN_PROGRAM_ID and len(accounts) >= 3:
            ata_wallets[accounts[1]] = accounts[2]
        elif program_id == MEMO_PROGRAM_ID:
            memos.append(data.decode("utf-8", errors="replace"))
    if not transfers:
        raise NotAPayout(signature, "no TransferChecked instruction")
    (source, mint, _, authority, *_), _ = transfers[0]
    if {(accounts[0], accounts[1]) for accounts, _ in transfers} != {(source, mint)}:
        raise NotAPayout(signature, "its transfers spend more than one source or mint")
    landed = parse_transaction(signature, tx)
    tokens = landed.token_accounts()

    def owner(account: Pubkey) -> Pubkey | None:
        known = tokens[str(account)].owner if str(account) in tokens else ""
        return Pubkey.from_string(known) if known else None

    seen: set[Pubkey] = set()
    parsed = []
    for (_, _, destination, *_), requested in transfers:
        gained = landed.token_change(str(destination)) if landed.succeeded and destination not in seen else 0
        seen.add(destination)
        parsed.append(LandedTransfer(
            destination_owner=owner(destination) or ata_wallets.get(destination),
            destination_ata=destination,
            requested=requested,
            amount=gained,
        ))
    first = parsed[0]
    return LandedPayout(
        signature=signature,
        amount=first.amount,
        requested=first.requested,
        mint=mint,
        source_owner=owner(source) or authority,
        source_ata=source,
        destination_owner=first.destination_owner,
        destination_ata=first.destination_ata,
        fee_lamports=int(meta.get("fee", 0)),
        slot=int(tx["slot"]),
        err=meta.get("err"),
        reference=memos[0] if memos else None,
        transfers=tuple(parsed),
    )
