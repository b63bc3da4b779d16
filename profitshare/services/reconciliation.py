"""Reconciliation: the ledger against the chain (docs/design.md, "Reconciliation").

Two directions, both read from the chain with the gateway:

1. **Ours -> chain.** Every payout attempt recorded ``landed`` within
   ``QV_RECONCILE_WINDOW_HOURS`` and not read back by an earlier run (``ReconciledAttempt``) is
   read back with ``getTransaction`` (``read_payout``, from an endpoint that has reached the
   attempt's slot: a node behind cannot say it is missing): it must exist, have succeeded, and
   pay each of its recorded ``legs`` exactly (owner, USDC ATA, amount, in transfer order) and
   nothing else, in the USDC mint (an attempt recorded without legs is one leg to its
   ``destination_owner``). Each distribution touched must have ``paid`` equal to the sum of its
   landed attempts and to the sum of its legs' ``paid``, and each leg's ``paid`` must equal what
   the landed attempts paid that leg. Each attempt is read back once.
2. **Chain -> ours.** For every agent wallet that paid within the window, the signatures newer
   than its ``ReconciliationBookmark`` (``getSignaturesForAddress`` with ``until``, paged with
   ``before`` by ``QV_CHAIN_SIGNATURE_LIMIT``) are scanned: a landed payout of ours (memo
   ``qv:…``, sent from the agent's token account) whose signature has no payout attempt is an
   unrecorded payout; one whose attempt the ledger recorded ``expired`` or ``failed`` is applied
   as paid (docs/design.md, "The ledger follows the chain": under the wallet's lock, audit reason
   "landed per chain", a ``landed_per_chain`` alert) and listed in the report as a repaired
   mismatch. The bookmark then moves to the newest signature read, so a run reads only what
   happened since the previous one (a wallet busy with a payout keeps its bookmark: read again).

Every mismatch is an ``Alert`` (kind ``reconciliation_mismatch``, both sides in ``data``) and the
run is kept as a ``ReconciliationReport`` (checked, matched, mismatched, signatures scanned,
unrecorded). An RPC failure ends the run early: the report keeps ``error`` and an
``rpc_failure`` alert is raised.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.errors import ChainError, InvalidAddress
from profitshare.chain.gateway import ChainGateway
from profitshare.chain.payouts import LandedPayout, NotAPayout
from profitshare.models import (
    AgentWallet,
    AttemptStatus,
    Distribution,
    DistributionLeg,
    LegRole,
    PayoutAttempt,
)
from profitshare.models.reconciliation import (
    ReconciledAttempt,
    ReconciliationBookmark,
    ReconciliationReport,
)
from profitshare.services.alerts import raise_alert
from profitshare.services.audit import record_event
from profitshare.services.engine import follow
from profitshare.services.wallet_history import signatures_since

logger = logging.getLogger(__name__)

ACTOR = "schedule:reconciliation"
REFERENCE_PREFIX = "qv:"


def _chain_side(landed: LandedPayout | None) -> dict[str, Any] | None:
    if landed is None:
        return None
    return {
        "amount": landed.total, "mint": str(landed.mint), "destination_owner": str(landed.destination_owner),
        "destination_ata": str(landed.destination_ata), "err": landed.err, "slot": landed.slot,
        "reference": landed.reference,
        "transfers": [
            {"destination_owner": str(t.destination_owner), "destination_ata": str(t.destination_ata),
             "requested": t.requested, "amount": t.amount}
            for t in landed.transfers
        ],
    }


def _our_side(attempt: PayoutAttempt) -> dict[str, Any]:
    return {
        "amount": attempt.amount, "mint": settings.QV_USDC_MINT, "destination_owner": attempt.destination_owner,
        "destination_ata": attempt.destination_ata, "distribution": attempt.distribution_id,
        "status": attempt.status, "legs": attempt.legs,
    }


def _ata(wallet: str, usdc_mint: str) -> str:
    """``wallet``'s USDC ATA (base58), or "" when ``wallet`` is not an address (then no
    transfer's account can match it)."""
    try:
        return str(usdc_ata(parse_address(wallet), parse_address(usdc_mint)))
    except InvalidAddress:
        return ""


def check_attempt(attempt: PayoutAttempt, landed: LandedPayout | None, usdc_mint: str) -> list[str]:
    """What differs between a landed attempt and its transaction on chain: a list of field names,
    empty when they match. ``missing``, ``err``, ``mint``; ``amount`` (the attempt's amount
    against what all its transfers moved); ``destination_owner`` / ``destination_ata`` (the
    attempt's against the first transfer's); ``legs`` (the chain has more or fewer transfers
    than the attempt has legs: a leg unpaid, or something else paid); and for each recorded leg
    ``i`` whose transfer differs, ``legs[i].destination_owner``, ``legs[i].destination_ata``,
    ``legs[i].amount`` (base units the destination gained)."""
    if landed is None:
        return ["missing"]
    problems = []
    if landed.err is not None:
        problems.append("err")
    if landed.total != attempt.amount:
        problems.append("amount")
    if str(landed.mint) != usdc_mint:
        problems.append("mint")
    if str(landed.destination_owner) != attempt.destination_owner:
        problems.append("destination_owner")
    if str(landed.destination_ata) != attempt.destination_ata:
        problems.append("destination_ata")
    # one transfer per leg, in order (docs/design.md, "All legs are paid together"); an attempt
    # recorded without legs is one leg, checked above as the first transfer
    legs = [(wallet, _ata(wallet, usdc_mint), amount) for _, wallet, amount in attempt.legs]
    if len(landed.transfers) != (len(legs) or 1):
        problems.append("legs")
    for i, ((owner, ata, amount), paid) in enumerate(zip(legs, landed.transfers, strict=False)):
        if str(paid.destination_owner) != owner:
            problems.append(f"legs[{i}].destination_owner")
        if str(paid.destination_ata) != ata:
            problems.append(f"legs[{i}].destination_ata")
        if paid.amount != amount:
            problems.append(f"legs[{i}].amount")
    return problems


def reconcile(*, gateway: ChainGateway, now=None) -> ReconciliationReport:
    """Run both directions of the reconciliation and return the stored report.

    ``gateway``: the chain gateway to read with (the task passes the engine's). Counts: ``checked`` landed attempts
    read back, ``matched`` / ``mismatched`` of them (plus the ledger's own sums that differ —
    a distribution's ``paid`` against its landed attempts or its legs, a leg's against what the
    attempts paid it, an attempt's leg that is not its distribution's — and attempts repaired
    as landed per chain, counted in ``mismatched``), ``signatures_scanned`` and
    ``unrecorded`` from the agent-wallet scan. Never raises on chain trouble: an RPC failure is
    recorded in ``report.error`` with an ``rpc_failure`` alert.
    """
    now = now or timezone.now()
    since = now - timedelta(hours=settings.QV_RECONCILE_WINDOW_HOURS)
    report = ReconciliationReport.objects.create(started_at=now)
    mismatches: list[dict[str, Any]] = []
    usdc_mint = str(gateway.usdc_mint)
    read: list[ReconciledAttempt] = []
    try:
        attempts = list(PayoutAttempt.objects.filter(
            status=AttemptStatus.LANDED, resolved_at__gte=since, reconciliation__isnull=True).order_by("id"))
        for attempt in attempts:
            try:
                landed = gateway.read_payout(attempt.signature, landed_slot=attempt.slot)  # "missing" from a node there
            except NotAPayout:
                landed, problems = None, ["not_a_payout"]
            else:
                problems = check_attempt(attempt, landed, usdc_mint)
            report.checked += 1
            read.append(ReconciledAttempt(attempt=attempt, report=report, matched=not problems))
            if problems:
                mismatches.append({"kind": "attempt", "signature": attempt.signature, "fields": problems,
                                   "ours": _our_side(attempt), "chain": _chain_side(landed)})
            else:
                report.matched += 1
        ReconciledAttempt.objects.bulk_create(read, ignore_conflicts=True)
        mismatches += _ledger_sums({a.distribution_id for a in attempts})
        found = _scan_agent_wallets(gateway, since, report)
        mismatches += [m for m in found if m["kind"] == "landed_per_chain"]  # repaired from the chain
        report.mismatched = len(mismatches)
        unrecorded = [m for m in found if m["kind"] != "landed_per_chain"]
        report.unrecorded = len(unrecorded)
        mismatches += unrecorded
    except ChainError as exc:
        report.error = f"{type(exc).__name__}: {exc}"[:2000]
        logger.error("reconciliation stopped: %s", report.error)
        report.mismatched = len(mismatches)
        ReconciledAttempt.objects.bulk_create(read, ignore_conflicts=True)  # what was read stays read
    _finish(report, mismatches)
    return report


class _Leg(NamedTuple):
    distribution: int
    role: str
    wallet: str
    paid: int


def _ledger_sums(distribution_ids: set[int]) -> list[dict[str, Any]]:
    """The ledger's own sums against its landed attempts, for ``distribution_ids``: a
    distribution's ``paid`` against its landed attempts' amounts (``paid``) and its legs' ``paid``
    (``legs_paid``); each leg's ``paid`` against what the landed attempts paid that leg
    (``leg_sum``); an attempt's leg that is not a leg of its distribution, or pays another wallet
    (``attempt_leg``). A distribution without leg rows is checked against its attempts only."""
    legs = {
        pk: _Leg(*row)
        for pk, *row in DistributionLeg.objects.filter(distribution_id__in=distribution_ids)
        .values_list("pk", "distribution_id", "role", "wallet", "paid").order_by("distribution_id", "id")
    }
    by_attempts, by_leg, out = _paid_by_attempts(distribution_ids, legs)
    legs_paid: dict[int, int] = defaultdict(int)
    for pk, leg in legs.items():
        legs_paid[leg.distribution] += leg.paid
        if leg.paid != by_leg[pk]:
            out.append({"kind": "leg_sum", "distribution": leg.distribution, "leg": pk, "fields": ["paid"],
                        "ours": {"paid": leg.paid, "role": leg.role, "wallet": leg.wallet},
                        "chain": {"landed_attempts_total": by_leg[pk]}})
    for dist_id, paid in Distribution.objects.filter(pk__in=distribution_ids).values_list("pk", "paid"):
        fields = ["paid"] if paid != by_attempts[dist_id] else []
        if dist_id in legs_paid and paid != legs_paid[dist_id]:
            fields.append("legs_paid")
        if fields:
            out.append({"kind": "ledger_sum", "distribution": dist_id, "fields": fields,
                        "ours": {"paid": paid, "legs_paid": legs_paid.get(dist_id)},
                        "chain": {"landed_attempts_total": by_attempts[dist_id]}})
    return out


def _paid_by_attempts(distribution_ids: set[int], legs: dict[int, _Leg]):
    """What the landed attempts of ``distribution_ids`` paid: ``(by distribution, by leg id,
    attempt_leg mismatches)``, base units. An attempt recorded without legs paid its
    distribution's creator leg."""
    creator_leg = {leg.distribution: pk for pk, leg in legs.items() if leg.role == LegRole.CREATOR}
    by_attempts: dict[int, int] = defaultdict(int)
    by_leg: dict[int, int] = defaultdict(int)
    strays = []
    landed = PayoutAttempt.objects.filter(distribution_id__in=distribution_ids, status=AttemptStatus.LANDED).values_list(
        "signature", "distribution_id", "amount", "legs", "destination_owner").order_by("id")
    for signature, dist_id, amount, paid_legs, destination in landed:
        by_attempts[dist_id] += amount
        if dist_id not in creator_leg and not paid_legs:
            continue  # no leg to credit (a distribution without leg rows): its total is what counts
        for leg_id, wallet, leg_amount in paid_legs or [[creator_leg[dist_id], destination, amount]]:
            leg = legs.get(leg_id)
            if leg is not None and leg.distribution == dist_id and leg.wallet == wallet:
                by_leg[leg_id] += leg_amount
                continue
            strays.append({"kind": "attempt_leg", "signature": signature, "distribution": dist_id,
                           "fields": ["wallet" if leg is not None and leg.distribution == dist_id else "leg"],
                           "ours": {"leg": [leg_id, wallet, leg_amount], "leg_wallet": leg.wallet if leg else None},
                           "chain": None})
    return by_attempts, by_leg, strays


def _scan_agent_wallets(gateway: ChainGateway, since, report: ReconciliationReport) -> list[dict[str, Any]]:
    wallets = AgentWallet.objects.filter(payout_attempts__created_at__gte=since).distinct().order_by("id")
    marks = {b.agent_wallet_id: b for b in ReconciliationBookmark.objects.filter(agent_wallet__in=wallets)}
    found = []
    for wallet in wallets:
        mark = marks.get(wallet.pk)
        entries = signatures_since(gateway, wallet.pubkey, until=mark.last_signature if mark else "")
        report.signatures_scanned += len(entries)
        if not entries:
            continue
        signatures = [e["signature"] for e in entries if e.get("err") is None]
        known = dict(PayoutAttempt.objects.filter(signature__in=signatures).values_list("signature", "status"))
        unlanded = [s for s in signatures if known.get(s) in follow.RECORDED_UNLANDED]
        if unlanded:
            repaired = _follow_landed(gateway, unlanded)
            found += repaired["mismatches"]
            if repaired["busy"]:
                continue  # the wallet is paying: leave its bookmark, the next run reads these again
        for signature in signatures:
            if signature in known:
                continue
            try:
                landed = gateway.read_payout(signature)
            except NotAPayout:
                continue  # settle, withdraw, airdrop…: not a payout
            if landed is None:
                continue
            if (landed.reference or "").startswith(REFERENCE_PREFIX) and str(landed.source_owner) == wallet.pubkey:
                found.append({"kind": "unrecorded_payout", "signature": signature, "fields": ["distribution"],
                              "ours": None, "chain": {**_chain_side(landed), "agent_wallet": wallet.pubkey}})
        ReconciliationBookmark.objects.update_or_create(
            agent_wallet=wallet, defaults={"last_signature": entries[0]["signature"], "last_slot": entries[0].get("slot")}
        )
    return found


def _follow_landed(gateway: ChainGateway, signatures: list[str]) -> dict[str, Any]:
    """Attempts the chain listed as landed that the ledger recorded expired or failed: applied as
    paid (``follow.follow_chain``, which raises its own alert); ``{"mismatches": one repaired
    entry per attempt applied, "busy": wallets skipped}``."""
    attempts = list(PayoutAttempt.objects.filter(signature__in=signatures).select_related("agent_wallet"))
    before = {a.pk: a.status for a in attempts}
    counts = follow.follow_chain(attempts, gateway=gateway, actor=ACTOR)
    applied = PayoutAttempt.objects.filter(pk__in=list(before), status=AttemptStatus.LANDED)
    mismatches = [
        {"kind": "landed_per_chain", "signature": a.signature, "fields": ["status"], "repaired": True,
         "ours": {**_our_side(a), "status": before[a.pk]}, "chain": {"status": "landed", "slot": a.slot}}
        for a in applied
    ]
    return {"mismatches": mismatches, "busy": counts["busy"]}


def _finish(report: ReconciliationReport, mismatches: list[dict[str, Any]]) -> None:
    report.finished_at = timezone.now()
    report.mismatches = mismatches
    with transaction.atomic():
        report.save()
        record_event("reconciliation", report.pk, actor=ACTOR, from_status="running",
                     to_status="failed" if report.error else "finished", reason=report.error,
                     checked=report.checked, matched=report.matched, mismatched=report.mismatched,
                     unrecorded=report.unrecorded, signatures_scanned=report.signatures_scanned)
        for m in mismatches:
            if m.get("repaired"):
                continue  # repaired, and alerted as landed_per_chain by the repair itself
            what = m.get("signature") or f"distribution {m.get('distribution')}"
            if "leg" in m:
                what += f" leg {m['leg']}"
            amount = (m.get("ours") or m.get("chain") or {}).get("amount")
            raise_alert("reconciliation_mismatch", f"{m['kind']} {what}: {', '.join(m['fields'])} differ",
                        amount=amount, report=report.pk, mismatch=m)
        if report.error:
            raise_alert("rpc_failure", f"reconciliation {report.pk} stopped: {report.error}", report=report.pk)


def latest_report() -> ReconciliationReport | None:
    """The most recent reconciliation report, or None before the first run."""
    return ReconciliationReport.objects.first()
