"""IOUs: claiming them for retry (SKIP LOCKED), waking those whose wallet was topped up with
SOL or whose recipient opened its token account, voiding (admins, with a reason), expiry."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.errors import ChainError
from profitshare.models import (
    IOU,
    Distribution,
    DistributionLeg,
    IouReason,
    IouStatus,
    LegRole,
)
from profitshare.services import leg_totals, webhooks
from profitshare.services.alerts import raise_alert
from profitshare.services.audit import record_event
from profitshare.services.errors import Conflict, InvalidInput, NotFound
from profitshare.services.running_totals import add_to_running_totals

logger = logging.getLogger(__name__)


def claim_due_ious(*, limit: int = 50, actor: str = "schedule:iou-retry", now=None) -> list[int]:
    """Claim up to ``limit`` IOUs due for retry: ``SELECT … FOR UPDATE SKIP LOCKED``, so workers
    on any number of machines never claim the same IOU. Claimed IOUs become ``processing``
    with ``claimed_at`` set and ``attempts`` + 1, and so do the other retryable IOUs of their
    distributions (its other legs: one payout pays them together) that no one else holds.
    Returns their ids, oldest first."""
    now = now or timezone.now()
    with transaction.atomic():
        ious = list(
            IOU.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(status__in=IouStatus.RETRYABLE, next_retry_at__lte=now)
            .order_by("created_at", "id")[:limit]
        )
        ious += _siblings(ious)
        for iou in ious:
            _claim(iou, actor, now)
    return [iou.pk for iou in sorted(ious, key=lambda iou: (iou.created_at, iou.pk))]


def _siblings(ious: list[IOU]) -> list[IOU]:
    """The other retryable IOUs of these IOUs' distributions, locked (those another worker holds
    are skipped: its run, under the agent wallet's lock, pays the same legs)."""
    if not ious:
        return []
    return list(
        IOU.objects.select_for_update(skip_locked=True, no_key=True)
        .filter(distribution__in={iou.distribution_id for iou in ious}, status__in=IouStatus.RETRYABLE)
        .exclude(pk__in=[iou.pk for iou in ious])
    )


def wake_topped_up(gateway, *, actor: str = "schedule:iou-retry", now=None, limit: int = 500) -> list[int]:
    """Make ``insufficient_sol`` IOUs due now when their agent wallet holds the lamports the
    payout needs (``IOU.sol_needed``) although their backoff has not run out: a subscriber who
    tops up is paid on the next sweep, not hours later (docs/design.md, "SOL pre-flight").
    ``gateway``: a ``ChainGateway`` (one ``getMultipleAccounts`` round per 50 wallets).
    Returns the ids woken; none when the balances cannot be read (the backoff still retries
    them, and the next sweep reads again)."""
    now = now or timezone.now()
    waiting = list(
        IOU.objects.filter(
            reason=IouReason.INSUFFICIENT_SOL, status__in=IouStatus.RETRYABLE, next_retry_at__gt=now,
            sol_needed__isnull=False,
        ).values_list("pk", "sol_needed", "subscription__agent_wallet__pubkey").order_by("next_retry_at")[:limit]
    )
    if not waiting:
        return []
    try:
        states = gateway.wallet_states(sorted({agent for _, _, agent in waiting}))
    except ChainError as exc:
        logger.info("agent wallets of %d IOUs owed for lack of SOL unread: %s", len(waiting), exc)
        return []
    woken = [(pk, needed, states[agent].lamports) for pk, needed, agent in waiting if states[agent].lamports >= needed]
    if not woken:
        return []
    with transaction.atomic():
        IOU.objects.filter(pk__in=[pk for pk, _, _ in woken], status__in=IouStatus.RETRYABLE).update(next_retry_at=now)
        for pk, needed, lamports in woken:
            record_event("iou", pk, actor=actor, reason="agent wallet topped up", lamports=lamports, sol_needed=needed)
    return [pk for pk, _, _ in woken]


def wake_accounts_opened(gateway, *, actor: str = "schedule:iou-retry", now=None, limit: int = 500) -> list[int]:
    """Make ``no_token_account`` IOUs due now when their recipient's USDC token account exists
    although their backoff has not run out: a referrer or treasury that opens its account is
    paid on the next sweep (docs/design.md, "A recipient without a token account").
    ``gateway``: a ``ChainGateway`` (one ``getMultipleAccounts`` round per 100 accounts).
    Returns the ids woken; none when the accounts cannot be read (the backoff still retries
    them)."""
    now = now or timezone.now()
    waiting = list(
        IOU.objects.filter(
            reason=IouReason.NO_TOKEN_ACCOUNT, status__in=IouStatus.RETRYABLE, next_retry_at__gt=now,
            leg__isnull=False,
        ).values_list("pk", "leg__wallet").order_by("next_retry_at")[:limit]
    )
    if not waiting:
        return []
    wallets = sorted({wallet for _, wallet in waiting})
    try:
        accounts = gateway.multiple_accounts([usdc_ata(parse_address(w), gateway.usdc_mint) for w in wallets])
    except ChainError as exc:
        logger.info("token accounts of %d IOUs owed for lack of one unread: %s", len(waiting), exc)
        return []
    opened = {w for w, account in zip(wallets, accounts, strict=True) if account is not None}
    woken = [(pk, wallet) for pk, wallet in waiting if wallet in opened]
    if not woken:
        return []
    with transaction.atomic():
        IOU.objects.filter(pk__in=[pk for pk, _ in woken], status__in=IouStatus.RETRYABLE).update(next_retry_at=now)
        for pk, wallet in woken:
            record_event("iou", pk, actor=actor, reason="recipient's token account opened", wallet=wallet)
    return [pk for pk, _ in woken]


def claim_iou(iou_id: int, *, actor: str, now=None) -> bool:
    """Claim one IOU now whatever its backoff (admin "retry now", guards), with the other
    retryable IOUs of its distribution. False when it is not retryable or another worker holds
    it."""
    now = now or timezone.now()
    with transaction.atomic():
        iou = IOU.objects.select_for_update(skip_locked=True, no_key=True).filter(pk=iou_id, status__in=IouStatus.RETRYABLE).first()
        if iou is None:
            return False
        for claimed in [iou, *_siblings([iou])]:
            _claim(claimed, actor, now)
        return True


def _claim(iou: IOU, actor: str, now) -> None:
    before = iou.status
    iou.status, iou.claimed_at, iou.attempts = IouStatus.PROCESSING, now, iou.attempts + 1
    iou.save(update_fields=["status", "claimed_at", "attempts"])
    record_event("iou", iou.pk, actor=actor, from_status=before, to_status=iou.status, attempt=iou.attempts)


def _leg_of(iou: IOU) -> DistributionLeg | None:
    """The leg an IOU owes, locked: its own, or (recorded without one) its distribution's creator leg."""
    legs = DistributionLeg.objects.select_for_update(no_key=True)
    if iou.leg_id is not None:
        return legs.get(pk=iou.leg_id)
    return legs.filter(distribution_id=iou.distribution_id, role=LegRole.CREATOR).first()


def void_iou(iou_id: int, *, reason: str, actor: str) -> IOU:
    """Void what remains of an IOU (admins only, with a reason: docs/design.md, "Void needs a
    reason and an admin"): the distribution's ``owed`` moves to ``voided``. Raises ``InvalidInput`` (empty reason), ``NotFound``, ``Conflict`` (paid,
    already voided, or being retried right now). Nothing changes on error."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason", "voiding a debt needs a reason")
    with transaction.atomic():
        iou = IOU.objects.select_for_update(no_key=True).filter(pk=iou_id).first()
        if iou is None:
            raise NotFound("iou", str(iou_id))
        if iou.status not in IouStatus.RETRYABLE:
            raise Conflict(f"IOU {iou_id} is {iou.status}; only open or expired IOUs can be voided")
        dist = Distribution.objects.select_for_update(no_key=True).get(pk=iou.distribution_id)
        leg = _leg_of(iou)
        remaining = iou.remaining
        before = iou.status
        iou.status, iou.void_reason, iou.voided_by, iou.resolved_at = IouStatus.VOIDED, reason, actor, timezone.now()
        iou.save(update_fields=["status", "void_reason", "voided_by", "resolved_at"])
        dist_before = dist.status
        dist.owed -= remaining
        dist.voided += remaining
        if dist.owed == 0:
            dist.status = dist.resting_status()
        dist.save(update_fields=["owed", "voided", "status", "updated_at"])
        if leg is not None:
            voided = min(remaining, leg.owed)
            leg.owed -= voided
            leg.voided += voided
            leg.save(update_fields=["owed", "voided"])
        record_event("iou", iou.pk, actor=actor, from_status=before, to_status=iou.status, reason=reason, voided=remaining)
        record_event(
            "distribution", dist.pk, actor=actor, from_status=dist_before, to_status=dist.status,
            reason=f"IOU {iou.pk} voided: {reason}", voided=remaining,
        )
        raise_alert("iou_voided", f"IOU {iou.pk} voided by {actor}: {reason}", amount=remaining, iou=iou.pk)
        webhooks.iou_voided(iou, voided=remaining)
        add_to_running_totals(  # last: earnings rollups and leg totals, same transaction
            voided=[(dist, remaining)],
            legs=[] if leg is None else [leg_totals.delta(dist.creator_id, leg, owed=-voided, voided=voided)],
        )
    return iou
