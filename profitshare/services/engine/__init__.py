"""The payout pipeline: distributions (and IOU retries) from owed to paid, exactly once.

Order (docs/design.md, "The money path"), for a batch of distributions with distinct agent
wallets, each wallet's payout lock held throughout (modules in brackets):

1. resolve earlier attempts by their signatures' status first (a crashed worker's attempt:
   landed means paid; still live: the same bytes are re-broadcast) [``payouts``, ``follow``];
2. the recipients' side [``carries``]: each recipient's carry folded into its leg; a creator
   address that is not a valid base58 key owes everything (``invalid_creator_wallet``); a leg
   below the dust threshold (higher when the creator's ATA must be created), or a platform or
   referral leg whose wallet has no USDC token account, is carried for its recipient; on a
   retry such a leg is held and stays owed (``no_token_account``); a distribution owing
   nothing rests;
3. expired debts of the same subscriptions are collected first [``runs``];
4. the one-transaction payout where it can be: SOL pre-flight, simulation, then settle +
   withdraw + every leg's ``transfer_checked`` under one signature [``atomic``];
5. otherwise step by step [``steps``, ``payouts``]: SOL pre-flight of every transaction still
   to send (``insufficient_sol``), settle PnL (``settle_failed``), withdraw what is missing
   (what arrived is read on the agent's USDC token account and kept as ``withdrawn``), and one
   transfer of every leg; signed bytes, signature and last valid block height are committed
   before the first send, re-sent unchanged while the blockhash lives;
6. whatever remains owed becomes (or stays) one IOU per unpaid leg with a reason code
   [``ledger``].

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
