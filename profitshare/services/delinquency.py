"""Delinquency (seed 001 #5; DESIGN.md "Debts block exits"): a subscriber who moves funds out
on-chain while owing is marked delinquent and stops receiving new copied entries.

While a subscription has a blocking IOU (``open`` or ``processing``: within its TTL, when the
platform refuses withdrawals anyway), its agent wallet is watched from the slot at which the
watch started (``DelinquencyWatch``). Every new transaction that involves the agent wallet
(``getSignaturesForAddress``, newest ``QV_CHAIN_SIGNATURE_LIMIT``) and is not one of our recorded
payouts is read with ``getTransaction``: USDC that arrives in a token account owned by anyone
other than the agent wallet or Drift's vault authority — out of the agent's token account, or out
of its Drift subaccount (through the vault) — is an outflow. The first outflow marks the
subscription ``delinquent`` with an audit event and a ``delinquency`` alert (how much moved,
which signature, slot, block time, to whom). The guard (and ``GET
/api/v1/subscriptions/{id}/guard``) then answers ``delinquent: true``; the engine sets the
subscription back to ``active`` when its debts are paid. Our own Drift settles and withdraws
move USDC only into the agent's token account, so they are never outflows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from profitshare.chain.drift.program import drift_signer_pda
from profitshare.chain.gateway import ChainGateway
from profitshare.models import IOU, IouStatus, PayoutAttempt, Subscription, SubscriptionStatus
from profitshare.models.ops import DelinquencyWatch
from profitshare.services.audit import record_event
from profitshare.services.notifications import alert

logger = logging.getLogger(__name__)

ACTOR = "schedule:delinquency"
BLOCKING = (IouStatus.OPEN, IouStatus.PROCESSING)


@dataclass(frozen=True)
class Outflow:
    """USDC that left the subscriber's funds in one transaction: ``amount`` base units,
    ``recipients`` (token account owner -> base units), ``signature``, ``slot``, ``block_time``
    (unix seconds or None)."""

    signature: str
    amount: int
    recipients: dict[str, int]
    slot: int
    block_time: int | None


def usdc_outflow(tx: dict, agent: str, usdc_mint: str, signature: str) -> Outflow | None:
    """The outflow of a ``getTransaction`` answer (json encoding) for ``agent``: USDC gained by
    token accounts owned by neither the agent nor Drift's vault authority; None when nothing
    left (or the transaction failed)."""
    meta = tx.get("meta") or {}
    if meta.get("err") is not None:
        return None
    ignored = {agent, str(drift_signer_pda())}

    def amounts(entries) -> dict[int, tuple[int, str]]:
        return {
            int(e["accountIndex"]): (int(e["uiTokenAmount"]["amount"]), e.get("owner") or "")
            for e in entries or [] if e.get("mint") == usdc_mint
        }

    pre, post = amounts(meta.get("preTokenBalances")), amounts(meta.get("postTokenBalances"))
    recipients: dict[str, int] = {}
    for index in set(pre) | set(post):
        before, owner = pre.get(index, (0, ""))
        after, owner = post.get(index, (0, owner))
        if after > before and owner not in ignored:
            recipients[owner] = recipients.get(owner, 0) + after - before
    if not recipients:
        return None
    return Outflow(signature, sum(recipients.values()), recipients, int(tx.get("slot") or 0), tx.get("blockTime"))


def detect_delinquency(*, gateway: ChainGateway | None = None, limit: int = 200) -> dict[str, int]:
    """Scan the agent wallets of active subscriptions that owe a blocking IOU; mark those whose
    funds moved out delinquent. Returns ``{"watched", "started", "delinquent", "stopped"}``
    (``started``: new watches from the current slot; ``stopped``: watches dropped because
    nothing blocks any more). Raises the gateway's ``ChainError`` when the RPC fails (the
    schedule runs again; nothing is half-written)."""
    if gateway is None:
        from profitshare.services.engine import default_gateway

        gateway = default_gateway()
    owing = IOU.objects.filter(status__in=BLOCKING).values("subscription_id")
    stopped, _ = DelinquencyWatch.objects.exclude(subscription_id__in=owing).delete()
    subs = list(
        Subscription.objects.filter(status=SubscriptionStatus.ACTIVE, pk__in=owing)
        .select_related("agent_wallet").order_by("id")[:limit]
    )
    counts = {"watched": len(subs), "started": 0, "delinquent": 0, "stopped": stopped}
    slot = None
    for sub in subs:
        watch = DelinquencyWatch.objects.filter(subscription=sub).first()
        if watch is None:
            slot = slot if slot is not None else int(gateway.pool.call("getSlot", {"commitment": "confirmed"}))
            DelinquencyWatch.objects.create(subscription=sub, since_slot=slot)
            counts["started"] += 1
            continue
        if _scan(gateway, sub, watch):
            counts["delinquent"] += 1
    return counts


def _scan(gateway: ChainGateway, sub: Subscription, watch: DelinquencyWatch) -> bool:
    agent = sub.agent_wallet.pubkey
    config: dict[str, Any] = {"limit": settings.QV_CHAIN_SIGNATURE_LIMIT, "commitment": "confirmed"}
    if watch.last_signature:
        config["until"] = watch.last_signature
    entries = [e for e in gateway.pool.call("getSignaturesForAddress", agent, config) or []
               if int(e.get("slot") or 0) >= watch.since_slot]
    if not entries:
        return False
    ours = set(PayoutAttempt.objects.filter(signature__in=[e["signature"] for e in entries])
               .values_list("signature", flat=True))
    outflow = None
    for entry in reversed(entries):  # oldest first
        if entry.get("err") is not None or entry["signature"] in ours:
            continue
        tx = gateway.transactions.get_transaction(entry["signature"])
        outflow = tx and usdc_outflow(tx, agent, str(gateway.usdc_mint), entry["signature"])
        if outflow:
            break
    with transaction.atomic():
        DelinquencyWatch.objects.filter(pk=watch.pk).update(last_signature=entries[0]["signature"])
        if outflow:
            return _mark(sub, outflow)
    return False


def _mark(sub: Subscription, outflow: Outflow) -> bool:
    locked = Subscription.objects.select_for_update().get(pk=sub.pk)
    if locked.status != SubscriptionStatus.ACTIVE:
        return False
    locked.status = SubscriptionStatus.DELINQUENT
    locked.save(update_fields=["status"])
    facts = {"amount": outflow.amount, "signature": outflow.signature, "slot": outflow.slot,
             "block_time": outflow.block_time, "recipients": outflow.recipients,
             "agent_wallet": sub.agent_wallet.pubkey}
    why = "funds moved out on-chain while owing"
    record_event("subscription", sub.subscription_id, actor=ACTOR, from_status=SubscriptionStatus.ACTIVE,
                 to_status=SubscriptionStatus.DELINQUENT, reason=why, **facts)
    alert("delinquency", f"{sub.subscription_id} moved {outflow.amount} out while owing (tx {outflow.signature})",
          amount=outflow.amount, subscription=sub.subscription_id, **{k: v for k, v in facts.items() if k != "amount"})
    return True
