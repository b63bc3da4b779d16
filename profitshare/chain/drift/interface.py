"""What the chain gateway needs from its Drift adapter.

The adapter only *builds* Drift instructions and *reads* subaccounts; the chain gateway
(``profitshare.chain.gateway.ChainGateway``, the only caller) adds the compute budget, signs with
the agent, sends, confirms and names failures. There is one implementation,
``driftpy_adapter.DriftpyAdapter``, on mainnet and on the local node (which runs the real Drift
program); tests may give the gateway anything with this shape.

Amounts are integers in USDC base units (6 decimals); PnL is signed. What a withdraw
*delivered* is measured by the gateway on the agent's SPL token account (docs/design.md,
"Measure what arrived"), never taken from Drift's own bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

__all__ = ["DriftSubaccountState", "DriftAdapter"]


@dataclass(frozen=True)
class DriftSubaccountState:
    """A Drift subaccount's USDC figures, in base units: ``collateral``, ``withdrawable`` (what
    a reduce-only withdraw can take now), ``settled_pnl`` (cumulative, signed),
    ``unsettled_pnl`` (realized but not yet settled, signed). Backends document how they
    derive each figure."""

    collateral: int
    withdrawable: int
    settled_pnl: int
    unsettled_pnl: int


class DriftAdapter(Protocol):
    """What the gateway needs from a Drift backend (synchronous, blocking)."""

    def read_subaccount(self, authority: Pubkey, subaccount_id: int):
        """Return an object with the four ``DriftSubaccountState`` fields (ints). Raises
        ``LookupError`` (e.g. ``DriftAccountNotFound``) or ``DriftSubaccountMissing`` when the
        subaccount does not exist."""
        ...

    def build_settle_pnl_instructions(
        self, authority_keypair: Keypair, subaccount_id: int, perp_market_index: int
    ) -> list[Instruction]:
        """Instructions settling ``perp_market_index``'s PnL of the subaccount (unsigned)."""
        ...

    def build_withdraw_instructions(
        self,
        authority_keypair: Keypair,
        subaccount_id: int,
        spot_market_index: int,
        amount: int,
        reduce_only: bool = True,
        *,
        user_token_account: Pubkey,
    ) -> list[Instruction]:
        """Instructions withdrawing ``amount`` base units into ``user_token_account`` (the
        authority's ATA), creating it first (idempotently) when it may be missing."""
        ...

    def build_payout_instructions(
        self,
        authority_keypair: Keypair,
        subaccount_id: int,
        perp_market_index: int | None,
        spot_market_index: int,
        amount: int,
        *,
        user_token_account: Pubkey,
    ) -> list[tuple[str, Instruction]]:
        """The Drift part of an atomic payout from one read: ``[(role, instruction)]`` with
        roles ``settle``, ``create_agent_ata``, ``withdraw`` (see ``DriftpyAdapter``)."""
        ...
