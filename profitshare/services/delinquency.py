"""Delinquency (docs/design.md, "Delinquency"): a subscriber who moves funds out
on-chain while owing is marked delinquent and stops receiving new copied entries; after the
subscription ended, the same move is recorded on its watch and told just the same.

**The baseline.** When an IOU that blocks exits (``open`` or ``processing``) is created, the
chain's current slot is read right after its transaction commits (``open_watch``, started by
``watch_new_debt``, which the engine calls when it opens the IOU) and a ``DelinquencyWatch``
starts from that slot (``baseline = iou_opened``). When that read fails (the RPC is down — often why the IOU exists),
the schedule starts the watch on its next run from the slot it reads then
(``watch_started``); on a cluster whose block times are wall time, transactions whose
``blockTime`` is at or after the IOU's opening are examined too, so the gap is closed there.

**The scan** (``detect_delinquency``, every minute): for every active or ended subscription
with a blocking IOU (an ended one until an outflow was found), the agent wallet's transactions newer than the watch's bookmark
(``getSignaturesForAddress`` with ``until``, paged) — or, on the first scan, from the baseline
on — that are not our recorded transactions (``PayoutAttempt`` payouts, ``DriftAction`` settles
and withdraws) and did not fail are read with ``getTransaction``. An *outflow* is any of:

* USDC gained by a token account owned by anyone other than the agent wallet or Drift's vault
  authority: out of the agent's token account, or out of its Drift subaccount to elsewhere
  (through the vault);
* SOL that left the agent wallet beyond the fee it paid for that transaction (and beyond rent
  put into its own token accounts): e.g. a plain system transfer signed by the agent key.

Our own settles and withdraws move USDC only into the agent's token account and SOL only as
fees (and the rent of the agent's own token account), so they would never be outflows anyway;
all three are skipped by signature. The first scan that finds outflows marks the subscription
``delinquent`` with an audit event and a ``delinquency`` alert (USDC ``amount``, ``lamports``,
the first ``signature``, slot, block time, recipients). The guard (and ``GET
/api/v1/subscriptions/{id}/guard``) then answers ``delinquent: true``; the engine sets the
subscription back to ``active`` when its debts are paid. An ended subscription stays
``ended``: the first scan that finds outflows writes ``outflow_signature`` / ``outflow_at`` on
its watch, with the same audit event (``ended`` to ``ended``), alert and
``subscription.delinquent`` webhook (``"ended": true``), and the guard answers ``delinquent:
true`` while the watch lasts. Every mark writes the watch's outflow, so a delinquent
subscription that then ends stays caught; paid debts clear it with the status. Watches of subscriptions that no longer owe a blocking IOU are
dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from profitshare.chain.drift.program import drift_signer_pda
from profitshare.chain.errors import ChainError
from profitshare.chain.gateway import ChainGateway
from profitshare.chain.landed import LandedTransaction
from profitshare.models import (
    IOU,
    DriftAction,
    IouStatus,
    PayoutAttempt,
    Subscription,
    SubscriptionStatus,
)
from profitshare.models.delinquency import DelinquencyWatch, WatchBaseline
from profitshare.services import webhooks
from profitshare.services.alerts import raise_alert
from profitshare.services.audit import record_event
from profitshare.services.wallet_history import signatures_since

logger = logging.getLogger(__name__)

ACTOR = "schedule:delinquency"
#: Subscriptions whose agent wallets are watched while they owe (an ended one owes on).
WATCHED = (SubscriptionStatus.ACTIVE, SubscriptionStatus.ENDED)
BASELINE_TIMEOUT_SECONDS = 2.0  # the slot read when an IOU opens: one short try per endpoint


@dataclass(frozen=True)
class Outflow:
    """What left the subscriber's funds in one transaction: ``amount`` USDC base units to
    ``recipients`` (token account owner -> base units) and ``lamports`` SOL to
    ``sol_recipients`` (address -> lamports); ``signature``, ``slot``, ``block_time`` (unix
    seconds or None)."""

    signature: str
    amount: int
    recipients: dict[str, int]
    slot: int
    block_time: int | None
    lamports: int = 0
    sol_recipients: dict[str, int] = field(default_factory=dict)


def outflow(tx: LandedTransaction, agent: str, usdc_mint: str) -> Outflow | None:
    """What a landed transaction moved out of the agent wallet ``agent``: USDC (base units)
    gained by token accounts owned by neither the agent nor Drift's vault authority, and
    lamports the agent lost beyond its fee (when it paid the fee) and beyond rent put into its
    own token accounts. None when nothing left or the transaction failed (a failed transaction
    moves nothing but its fee)."""
    if not tx.succeeded:
        return None
    ignored = {agent, str(drift_signer_pda())}
    recipients: dict[str, int] = {}
    for account, balance in tx.token_accounts().items():
        gained = tx.token_change(account)
        if balance.mint == usdc_mint and gained > 0 and balance.owner not in ignored:
            recipients[balance.owner] = recipients.get(balance.owner, 0) + gained
    lamports, sol_recipients = _sol_outflow(tx, agent)
    if not recipients and not lamports:
        return None
    return Outflow(tx.signature, sum(recipients.values()), recipients, tx.slot, tx.block_time, lamports, sol_recipients)


def _sol_outflow(tx: LandedTransaction, agent: str) -> tuple[int, dict[str, int]]:
    if agent not in tx.pre_lamports:
        return 0, {}
    fee = tx.fee if tx.account_keys and tx.account_keys[0] == agent else 0
    lost = -tx.lamport_change(agent) - fee
    if lost <= 0:
        return 0, {}
    owned = {account for account, balance in tx.token_accounts().items() if balance.owner == agent}
    gains = {k: tx.lamport_change(k) for k in tx.post_lamports if k != agent and tx.lamport_change(k) > 0}
    lost -= sum(g for k, g in gains.items() if k in owned)
    if lost <= 0:
        return 0, {}
    return lost, {k: g for k, g in gains.items() if k not in owned}


# --- the baseline: when an IOU opens ---------------------------------------------------------------
def open_watch(subscription_pk: int, opened_at: datetime, *, gateway: ChainGateway) -> DelinquencyWatch | None:
    """Start watching the subscription's agent wallet from the chain's current slot (called
    once the transaction that created a blocking IOU committed; the slot is read with one short
    try per endpoint, ``BASELINE_TIMEOUT_SECONDS``: this runs in the engine's payout path).
    Nothing happens when a watch already runs (it started at an earlier debt) or the slot cannot
    be read (the schedule then starts it). Returns the watch or None. Never raises on chain
    trouble."""
    if DelinquencyWatch.objects.filter(subscription_id=subscription_pk).exists():
        return None
    try:
        slot = gateway.slot(quick=BASELINE_TIMEOUT_SECONDS)
    except ChainError:
        slot = None
    if slot is None:
        logger.warning("delinquency baseline for subscription %s not read; the schedule starts the watch", subscription_pk)
        return None
    watch, created = DelinquencyWatch.objects.get_or_create(
        subscription_id=subscription_pk,
        defaults={"since_slot": slot, "baseline": WatchBaseline.IOU_OPENED, "opened_at": opened_at},
    )
    return watch if created else None


def watch_new_debt(iou: IOU, *, gateway: ChainGateway) -> None:
    """Open the delinquency watch of a newly opened blocking IOU once the transaction that
    created it commits (``open_watch``, reading the slot through ``gateway``). The service that
    opens an IOU calls this itself, in its transaction (``engine.ledger.owe``). Never raises: a
    failed start leaves the watch to the schedule, and the payout that opened the IOU is never
    broken by it."""
    if iou.status not in IouStatus.BLOCKING:
        return
    subscription_pk, opened_at = iou.subscription_id, iou.created_at or timezone.now()

    def start() -> None:
        try:
            open_watch(subscription_pk, opened_at, gateway=gateway)
        except Exception:  # noqa: BLE001 - never break the payout that created the IOU
            logger.exception("delinquency watch for subscription %s not started", subscription_pk)

    transaction.on_commit(start)


# --- the schedule -----------------------------------------------------------------------------------
def detect_delinquency(*, gateway: ChainGateway, limit: int = 200) -> dict[str, int]:
    """Scan the agent wallets of active subscriptions, and of ended ones not yet caught, that
    owe a blocking IOU; mark those whose funds moved out delinquent (an ended one: on its watch
    only). Returns ``{"watched", "started", "delinquent", "stopped", "signatures"}``
    (``started``: watches this run had to start itself, from the current slot; ``stopped``:
    watches dropped because nothing blocks any more, except one that caught an outflow, kept
    while anything is owed; ``signatures``: transactions listed). Raises the gateway's
    ``ChainError`` when the RPC fails (the schedule runs again; what a scan did not finish is
    read again, nothing is half-written)."""
    owing = IOU.objects.filter(status__in=IouStatus.BLOCKING).values("subscription_id")
    still_owed = IOU.objects.filter(status__in=IouStatus.ACTIVE).values("subscription_id")
    # a watch that caught an outflow stays while anything is owed (past its TTL too), as a
    # delinquent status does: it is what the guard answers for an ended subscription
    stopped, _ = (
        DelinquencyWatch.objects.exclude(subscription_id__in=owing)
        .exclude(outflow_signature__gt="", subscription_id__in=still_owed)
        .delete()
    )
    subs = list(
        Subscription.objects.filter(status__in=WATCHED, pk__in=owing)
        .exclude(status=SubscriptionStatus.ENDED, delinquency_watch__outflow_signature__gt="")
        .select_related("agent_wallet").order_by("id")[:limit]
    )
    counts = {"watched": len(subs), "started": 0, "delinquent": 0, "stopped": stopped, "signatures": 0}
    watches = {w.subscription_id: w for w in DelinquencyWatch.objects.filter(subscription__in=subs)}
    slot = None
    for sub in subs:
        watch = watches.get(sub.pk)
        if watch is None:
            slot = slot if slot is not None else gateway.slot()
            opened_at = IOU.objects.filter(subscription=sub, status__in=IouStatus.BLOCKING).aggregate(t=Min("created_at"))["t"]
            watch, _ = DelinquencyWatch.objects.get_or_create(
                subscription=sub, defaults={"since_slot": slot, "baseline": WatchBaseline.WATCH_STARTED,
                                            "opened_at": opened_at})
            counts["started"] += 1
        scanned, marked = _scan(gateway, sub, watch)
        counts["signatures"] += scanned
        counts["delinquent"] += marked
    return counts


def _too_old(watch: DelinquencyWatch):
    """Whether a ``getSignaturesForAddress`` entry predates the watch. With the baseline read
    when the IOU opened, the slot alone decides. A watch the schedule started later also counts
    older slots whose block time is after the IOU opened (block times are whole seconds: a move
    within the opening's own second is given the benefit of the doubt)."""
    opened = int(watch.opened_at.timestamp()) if watch.opened_at else None
    by_slot_only = watch.baseline == WatchBaseline.IOU_OPENED

    def stop(entry: dict[str, Any]) -> bool:
        if int(entry.get("slot") or 0) >= watch.since_slot:
            return False
        if by_slot_only:
            return True
        block_time = entry.get("blockTime")
        return not (opened is not None and block_time is not None and int(block_time) > opened)

    return stop


def _scan(gateway: ChainGateway, sub: Subscription, watch: DelinquencyWatch) -> tuple[int, bool]:
    agent = sub.agent_wallet.pubkey
    if watch.last_signature:
        entries = signatures_since(gateway, agent, until=watch.last_signature)
    else:
        entries = signatures_since(gateway, agent, stop=_too_old(watch))
    if not entries:
        DelinquencyWatch.objects.filter(pk=watch.pk).update(last_scan_at=timezone.now())
        return 0, False
    listed = [e["signature"] for e in entries]
    ours = set(PayoutAttempt.objects.filter(signature__in=listed).values_list("signature", flat=True))
    ours |= set(DriftAction.objects.filter(signature__in=listed).values_list("signature", flat=True))
    found: list[Outflow] = []
    for entry in reversed(entries):  # oldest first
        if entry.get("err") is not None or entry["signature"] in ours:
            continue
        tx = gateway.transaction(entry["signature"])
        moved = tx and outflow(tx, agent, str(gateway.usdc_mint))
        if moved:
            found.append(moved)
    with transaction.atomic():
        DelinquencyWatch.objects.filter(pk=watch.pk).update(
            last_signature=entries[0]["signature"], last_slot=entries[0].get("slot"), last_scan_at=timezone.now())
        marked = bool(found) and _mark(sub, watch, found)
    return len(entries), marked


def _mark(sub: Subscription, watch: DelinquencyWatch, found: list[Outflow]) -> bool:
    """Mark ``sub`` delinquent for ``found`` (an ended subscription: on its ``watch``), with the
    audit event, the alert and the webhook; False when its status changed meanwhile."""
    locked = Subscription.objects.select_for_update(no_key=True).get(pk=sub.pk)
    if locked.status not in WATCHED:
        return False
    first = found[0]
    ended = locked.status == SubscriptionStatus.ENDED
    # on the watch too: a delinquent subscription that then ends stays caught
    DelinquencyWatch.objects.filter(pk=watch.pk).update(outflow_signature=first.signature, outflow_at=timezone.now())
    if not ended:
        locked.status = SubscriptionStatus.DELINQUENT
        locked.save(update_fields=["status"])
    amount, lamports = sum(f.amount for f in found), sum(f.lamports for f in found)
    recipients: dict[str, int] = {}
    sol_recipients: dict[str, int] = {}
    for f in found:
        for owner, units in f.recipients.items():
            recipients[owner] = recipients.get(owner, 0) + units
        for address, lam in f.sol_recipients.items():
            sol_recipients[address] = sol_recipients.get(address, 0) + lam
    facts = {"amount": amount, "lamports": lamports, "signature": first.signature, "slot": first.slot,
             "block_time": first.block_time, "recipients": recipients, "sol_recipients": sol_recipients,
             "signatures": [f.signature for f in found], "agent_wallet": sub.agent_wallet.pubkey}
    why = "funds moved out on-chain while owing" + (", after the subscription ended" if ended else "")
    record_event("subscription", sub.subscription_id, actor=ACTOR, from_status=locked.status if ended else
                 SubscriptionStatus.ACTIVE, to_status=locked.status, reason=why, **facts)
    raise_alert("delinquency", f"{sub.subscription_id} moved {amount} USDC base units and {lamports} lamports out "
                f"while owing{' after it ended' if ended else ''} (tx {first.signature})",
                amount=amount, subscription=sub.subscription_id, ended=ended,
                **{k: v for k, v in facts.items() if k != "amount"})
    webhooks.subscription_delinquent(sub.subscription_id, {**facts, "ended": ended})
    return True
