"""Drift on the local node: instructions for the node's Drift emulator, subaccount reads.

The node (``profitshare.localnet``) emulates the Drift program (the binary cannot run offline):
a transaction carrying ``settlePnl`` / ``withdraw`` built by ``profitshare.chain.drift.program``
(driftpy's IDL), signed by the authority and sent with ordinary ``sendTransaction``, is executed
by the emulator; withdraw moves real USDC from the emulated vault into the authority's real SPL
token account. Failures are refused by preflight or land with
``{"InstructionError": [i, {"Custom": <Drift error code>}]}``, as on a validator. The subaccount
is read with the node-only JSON-RPC ``localnet_driftAccount``. Differences from real Drift: no
oracle / market ``remaining_accounts`` are needed, and compute-budget instructions do not change
the (LiteSVM) fee.
"""

from __future__ import annotations

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from profitshare.chain.addresses import create_ata_idempotent_ix
from profitshare.chain.drift import program
from profitshare.chain.drift.interface import DriftSubaccountState
from profitshare.chain.errors import DriftSubaccountMissing
from profitshare.chain.rpc import RpcPool

__all__ = ["LocalnetDriftAdapter"]


class LocalnetDriftAdapter:
    """``DriftAdapter`` for the local node. ``pool``: RPC access to the node; ``usdc_mint``: the
    node's USDC mint (the withdraw destination's ATA is created for it)."""

    def __init__(self, pool: RpcPool, *, usdc_mint: Pubkey) -> None:
        self.pool = pool
        self.usdc_mint = usdc_mint

    def read_subaccount(self, authority: Pubkey, subaccount_id: int) -> DriftSubaccountState:
        """``localnet_driftAccount [authority, subaccountId]`` as a ``DriftSubaccountState``
        (the emulator's own figures: withdrawable = collateral less any unsettled loss).

        Raises ``DriftSubaccountMissing`` when the node has no such subaccount.
        """
        found = self.pool.call("localnet_driftAccount", str(authority), subaccount_id)
        if found is None:
            raise DriftSubaccountMissing(str(authority), subaccount_id)
        return DriftSubaccountState(
            collateral=int(found["collateral"]),
            withdrawable=int(found["withdrawable"]),
            settled_pnl=int(found["settledPnl"]),
            unsettled_pnl=int(found["unsettledPnl"]),
        )

    def build_settle_pnl_instructions(
        self, authority_keypair: Keypair, subaccount_id: int, perp_market_index: int
    ) -> list[Instruction]:
        """``[settlePnl]`` (USDC quote market 0). Raises ``ValueError`` on a bad index."""
        return [
            program.build_settle_pnl_ix(authority_keypair.pubkey(), subaccount_id, perp_market_index)
        ]

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
        """``[CreateIdempotent(authority's USDC ATA), withdraw]`` (the emulator requires the
        destination to exist; the idempotent create is a no-op when it does).
        Raises ``ValueError`` on a bad amount, index or ``reduce_only``."""
        owner = authority_keypair.pubkey()
        return [
            create_ata_idempotent_ix(owner, owner, self.usdc_mint),
            program.build_withdraw_ix(
                owner, subaccount_id, spot_market_index, amount, reduce_only, user_token_account
            ),
        ]
