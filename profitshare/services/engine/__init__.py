"""The payout pipeline: distributions (and IOU retries) from owed to paid, exactly once.

Order (DESIGN.md "The money path"; seeds 000 and 001 correct seed 002), for a batch of
distributions with distinct agent wallets, each wallet's payout lock held throughout:

1. resolve earlier attempts by their signatures' status first (a crashed worker's attempt:
   landed means paid; still live: the same bytes are re-broadcast);
2. fold the subscription's dust carry in; a creator address that is not a valid 32-byte base58
   key owes everything (``invalid_creator_wallet`` + alert); below the dust threshold (higher
   when the creator's ATA must be created) the amount is carried, not paid;
3. settle PnL on Drift and wait for confirmation (``settle_failed`` otherwise);
4. SOL pre-flight for the whole payout: withdraw + transfer fees, priority fee, ATA rent
   (``insufficient_sol``);
5. withdraw what is still needed from Drift; what arrived is read on the agent's USDC token
   account (never Drift collateral) and kept on the distribution as ``withdrawn``;
6. pay min(withdrawn, owed) with ``transfer_checked`` to the creator's ATA: the signed bytes,
   signature and last valid block height are committed before the first send; re-sent unchanged
   while the blockhash lives; re-signed only after it expired unlanded;
7. whatever remains owed becomes (or stays) one IOU with a reason code.

Batching is what makes fan-out fast (one signal, many subscribers): each phase costs a few RPC
calls and database statements for the whole batch (``getMultipleAccounts``,
``getSignatureStatuses``, bulk writes), not per payout. A single distribution is a batch of one.
Every step keeps ``paid + owed + carried + voided == share + carry_in`` (a database constraint).
"""

from profitshare.services.engine.batch import UNRESOLVED_ATTEMPTS
from profitshare.services.engine.ledger import retry_delay
from profitshare.services.engine.runs import (
    default_gateway,
    is_pending,
    process_distribution,
    process_pending,
    retry_iou,
    retry_iou_now,
    retry_ious,
)

__all__ = [
    "UNRESOLVED_ATTEMPTS",
    "default_gateway",
    "is_pending",
    "process_distribution",
    "process_pending",
    "retry_delay",
    "retry_iou",
    "retry_iou_now",
    "retry_ious",
]
