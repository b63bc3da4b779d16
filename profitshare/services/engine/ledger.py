"""The ledger side of outcomes: landed payouts applied once, leg by leg; what remains owed
becomes one IOU per unpaid leg with a reason code; delinquency cleared when debts are paid;
retry backoff."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from profitshare.models import (
    IOU,
    AttemptStatus,
    Distribution,
    DistributionLeg,
    IouReason,
    IouStatus,
    LegRole,
    PayoutAttempt,
    PayoutPath,
    Subscription,
    SubscriptionStatus,
)
from profitshare.models.delinquency import DelinquencyWatch
from profitshare.services import leg_totals, webhooks
from profitshare.services.alerts import raise_alert
from profitshare.services.audit import append_events, event, record_event
from profitshare.services.delinquency import watch_new_debt
from profitshare.services.engine.batch import Batch, Item, creator_legs, group
from profitshare.services.running_totals import add_to_running_totals


def apply_landed(
    batch: Batch, landed: list[tuple[PayoutAttempt, int | None]], *, reason: str = "payout landed"
) -> dict[int, int]:
    """Apply landed payouts to the ledger exactly once (idempotent per attempt): each leg the
    attempt paid (``PayoutAttempt.legs``) moves from owed to paid by its amount, and so does the
    distribution by their sum, the leg's IOU with it; the withdrawn funds it spent (beyond what its own Drift withdraw
    brought in, for an atomic attempt) leave ``withdrawn``, an atomic attempt also
    marks the distribution settled, and the IOU, earnings, audit (``reason``) and webhooks
    follow in the same database transaction. A distribution is credited at most what it still
    owes: returns ``{attempt pk: base units it paid beyond that}`` for each attempt that paid
    more than was owed (a double payment, which the design makes impossible; the caller
    alerts), else ``{}``. A leg is credited at most what it owes, in the same way."""
    if not landed:
        return {}
    now = timezone.now()
    overpaid: dict[int, int] = {}
    credits: list[tuple[Distribution, int]] = []
    with transaction.atomic():
        locked = {a.pk: a for a in PayoutAttempt.objects.select_for_update(no_key=True).filter(pk__in=[a.pk for a, _ in landed])}
        fresh = [(locked[a.pk], slot) for a, slot in landed if locked[a.pk].status != AttemptStatus.LANDED]
        if not fresh:
            return {}
        dists = {d.pk: d for d in Distribution.objects.select_for_update(no_key=True).filter(pk__in=[a.distribution_id for a, _ in fresh])}
        legs = {leg.pk: leg for leg in DistributionLeg.objects.select_for_update(no_key=True).filter(distribution__in=list(dists))}
        with_legs = {leg.distribution_id for leg in legs.values()}
        events, paid_ious, changed_legs, totals = [], [], set(), []
        legs.update((leg.pk, leg) for leg in creator_legs([d for d in dists.values() if d.pk not in with_legs],
                                                          totals=totals))
        ious = _ious_by_leg(IOU.objects.select_for_update(no_key=True).filter(distribution__in=list(dists), status__in=IouStatus.ACTIVE), legs)
        for attempt, slot in fresh:
            before = attempt.status
            attempt.status, attempt.slot, attempt.resolved_at = AttemptStatus.LANDED, slot, now
            events.append(event("payout_attempt", attempt.signature, actor=batch.actor, from_status=before,
                                 to_status=attempt.status, reason=reason, amount=attempt.amount, slot=slot))
            dist = dists[attempt.distribution_id]
            credited = 0
            for leg_id, leg_amount in legs_paid(attempt, legs):
                leg = legs[leg_id]
                leg_credit = min(leg_amount, leg.owed)
                leg.paid += leg_credit
                leg.owed -= leg_credit
                credited += leg_credit
                changed_legs.add(leg_id)
                totals.append(leg_totals.delta(dist.creator_id, leg, paid=leg_credit, owed=-leg_credit))
                iou = ious.get(leg_id)
                if iou is not None and leg_credit:
                    iou.paid_amount += min(leg_credit, iou.remaining)
                    before_iou = iou.status
                    if iou.paid_amount >= iou.amount or leg.owed == 0:
                        iou.status, iou.resolved_at = IouStatus.PAID, now
                        paid_ious.append(iou)
                    events.append(event("iou", iou.pk, actor=batch.actor, from_status=before_iou, to_status=iou.status,
                                         reason=reason, signature=attempt.signature, amount=leg_credit,
                                         remaining=iou.remaining))
            credited = min(credited, dist.owed)
            if credited < attempt.amount:
                overpaid[attempt.pk] = attempt.amount - credited
            if credited:
                credits.append((dist, credited))
            dist.paid += credited
            dist.owed -= credited
            # the USDC it spent from the agent's account beyond what its own Drift withdraw brought
            dist.withdrawn -= min(dist.withdrawn, attempt.amount - attempt.withdraw_amount)
            if attempt.path == PayoutPath.ATOMIC:  # its settle and withdraw happened inside it
                dist.settled = True
            before_status, dist.status = dist.status, dist.resting_status()
            events.append(event("distribution", dist.pk, actor=batch.actor, from_status=before_status, to_status=dist.status,
                                 reason=reason, signature=attempt.signature, amount=credited,
                                 paid=dist.paid, owed=dist.owed))
        by_slot: dict[int | None, list[int]] = {}
        for attempt, slot in fresh:
            by_slot.setdefault(slot, []).append(attempt.pk)
        for slot, pks in by_slot.items():  # a batch lands in one or a few slots
            PayoutAttempt.objects.filter(pk__in=pks).update(status=AttemptStatus.LANDED, slot=slot, resolved_at=now)
        # rows are locked and their final values computed above: one UPDATE per distinct result
        finals = [((d.paid, d.owed, d.withdrawn, d.status, d.settled), d.pk) for d in dists.values()]
        for (paid, owed, withdrawn, status, settled), pks in group(finals).items():
            Distribution.objects.filter(pk__in=pks).update(
                paid=paid, owed=owed, withdrawn=withdrawn, status=status, settled=settled, updated_at=now
            )
        if changed_legs:
            DistributionLeg.objects.bulk_update([legs[pk] for pk in sorted(changed_legs)], ["paid", "owed"])
        if ious:
            IOU.objects.bulk_update(list(ious.values()), ["paid_amount", "status", "resolved_at"])
        append_events(events)
        webhooks.payouts_landed([a for a, _ in fresh], dists, paid_ious)  # same transaction (outbox)
        for iou in paid_ious:
            clear_delinquency(iou.subscription_id, batch.actor)
        add_to_running_totals(paid=credits, legs=totals)  # last: see its docstring
    for attempt, _ in landed:
        attempt.status = AttemptStatus.LANDED
    return overpaid


def legs_paid(attempt: PayoutAttempt, legs: dict[int, DistributionLeg]) -> list[tuple[int, int]]:
    """``[(leg id, base units)]`` an attempt pays, from its ``legs`` record; an attempt recorded
    without one paid its whole ``amount`` to its distribution's creator leg. ``legs``: the
    distribution's legs by id."""
    if attempt.legs:
        return [(int(leg_id), int(amount)) for leg_id, _, amount in attempt.legs]
    creator = next(pk for pk, leg in legs.items() if leg.distribution_id == attempt.distribution_id
                   and leg.role == LegRole.CREATOR)
    return [(creator, attempt.amount)]


def _ious_by_leg(ious, legs: dict[int, DistributionLeg]) -> dict[int, IOU]:
    """``{leg id: active IOU}``; an IOU recorded without a leg owes its distribution's creator leg."""
    creator_legs = {leg.distribution_id: pk for pk, leg in legs.items() if leg.role == LegRole.CREATOR}
    return {iou.leg_id or creator_legs[iou.distribution_id]: iou for iou in ious}


def clear_delinquency(subscription_id: int, actor: str) -> None:
    """A delinquent subscription becomes active again once it has no active IOU; an ended one
    caught moving funds out (its watch's outflow) is cleared the same way and stays ended
    (caller holds the transaction; docs/design.md, "Delinquency")."""
    sub = Subscription.objects.select_for_update(no_key=True).get(pk=subscription_id)
    if sub.status == SubscriptionStatus.ENDED:
        caught = DelinquencyWatch.objects.filter(subscription=sub, outflow_signature__gt="")
        if not caught.exists():
            return
    elif sub.status != SubscriptionStatus.DELINQUENT:
        return
    if IOU.objects.filter(subscription=sub, status__in=IouStatus.ACTIVE).exists():
        return
    before = sub.status
    if before == SubscriptionStatus.DELINQUENT:
        sub.status = SubscriptionStatus.ACTIVE
        sub.save(update_fields=["status"])
    DelinquencyWatch.objects.filter(subscription=sub).update(outflow_signature="", outflow_at=None)
    record_event("subscription", sub.subscription_id, actor=actor, from_status=before, to_status=sub.status,
                 reason="debts paid")
    webhooks.subscription_cleared(sub.subscription_id)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff of IOU retries: base × 2^(attempts−1), capped (settings)."""
    base, cap = settings.QV_IOU_RETRY_BASE_SECONDS, settings.QV_IOU_RETRY_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def owe(batch: Batch, item: Item, reason: str, error: str, *, sol_needed: int | None = None) -> None:
    """Whatever each leg of the distribution still owes becomes (or stays) that leg's one
    active IOU, all with the same reason and backoff (the legs are retried together: docs/design.md,
    "All legs are paid together") except the item's held legs, owed as ``no_token_account``
    ("A recipient without a token account"); the item leaves the batch. ``sol_needed``: lamports the
    payout needs, for ``insufficient_sol`` (kept on the IOUs: what the subscriber tops up to,
    and what wakes their retry)."""
    item.stop()
    now = timezone.now()
    with transaction.atomic():
        dist = Distribution.objects.select_for_update(of=("self",), no_key=True).select_related("creator").get(pk=item.dist.pk)
        if dist.owed == 0:
            return
        legs = {leg.pk: leg for leg in DistributionLeg.objects.select_for_update(no_key=True).filter(distribution=dist)}
        ious = _ious_by_leg(IOU.objects.select_for_update(no_key=True).filter(distribution=dist, status__in=IouStatus.ACTIVE), legs)
        before_dist = dist.status
        dist.status = dist.resting_status()
        dist.save(update_fields=["status", "updated_at"])
        status_changed = before_dist != dist.status
        if status_changed:
            record_event("distribution", dist.pk, actor=batch.actor, from_status=before_dist, to_status=dist.status,
                         reason=reason, owed=dist.owed)
        opened = False
        for leg in sorted(legs.values(), key=lambda leg: (leg.role != LegRole.CREATOR, leg.pk)):
            if leg.owed == 0:
                continue
            why, text, sol = reason, error, sol_needed
            if leg.pk in item.held:
                why, text, sol = IouReason.NO_TOKEN_ACCOUNT, item.held[leg.pk], None
            iou = ious.get(leg.pk)
            if iou is None:
                iou = _open_iou(batch, dist, leg, why, text, sol, now, watch=not opened)
                opened = True
                webhooks.share_owed(dist, iou, reason=why, opened=True, status_changed=status_changed)
            else:
                _reopen_iou(batch, iou, why, text, sol, now)
                webhooks.share_owed(dist, iou, reason=why, opened=False, status_changed=status_changed)
            status_changed = False  # the distribution's change is told once


def _open_iou(batch: Batch, dist: Distribution, leg: DistributionLeg, reason: str, error: str,
              sol_needed: int | None, now, *, watch: bool) -> IOU:
    """A new IOU for what ``leg`` owes, its audit event and alerts; ``watch``: start the
    subscriber's delinquency watch (once per payout)."""
    iou = IOU.objects.create(
        distribution=dist, subscription_id=dist.subscription_id, creator_id=dist.creator_id, leg=leg,
        amount=leg.owed, reason=reason, last_error=error[:2000], next_retry_at=now + retry_delay(1),
        sol_needed=sol_needed, expires_at=now + timedelta(days=settings.QV_IOU_TTL_DAYS),
    )
    record_event("iou", iou.pk, actor=batch.actor, to_status=iou.status, reason=reason, amount=iou.amount, error=error,
                 **({} if leg.role == LegRole.CREATOR else {"role": leg.role, "wallet": leg.wallet}))
    if watch:
        watch_new_debt(iou, gateway=batch.gateway)  # the watch starts from the chain's slot after commit
    whose = {} if leg.role == LegRole.CREATOR else {"role": leg.role}
    raise_alert("iou_created", f"IOU {iou.pk}: {leg.owed} owed to {leg.wallet} ({', '.join([*whose.values(), reason])})",
                amount=leg.owed, iou=iou.pk, distribution=dist.pk, reason=reason, **whose)
    if reason == IouReason.INVALID_CREATOR_WALLET and leg.role == LegRole.CREATOR:
        raise_alert("invalid_creator_wallet", f"creator wallet {dist.creator.address!r} is invalid",
                    amount=leg.owed, creator=dist.creator.address)
    return iou


def _reopen_iou(batch: Batch, iou: IOU, reason: str, error: str, sol_needed: int | None, now) -> None:
    """An IOU whose retry fell short again: open (expired past its TTL), the new reason, the next backoff."""
    before = iou.status
    iou.status = IouStatus.EXPIRED if iou.expires_at <= now else IouStatus.OPEN
    iou.reason, iou.last_error, iou.claimed_at, iou.sol_needed = reason, error[:2000], None, sol_needed
    iou.next_retry_at = now + retry_delay(iou.attempts + 1)
    iou.save(update_fields=["status", "reason", "last_error", "claimed_at", "next_retry_at", "sol_needed"])
    record_event("iou", iou.pk, actor=batch.actor, from_status=before, to_status=iou.status, reason=reason,
                 remaining=iou.remaining, error=error, next_retry_at=iou.next_retry_at.isoformat())
