"""Ending a subscription, and the final flush of what it carries (docs/design.md, "A
subscription ends", "Dust is carried", "Dust is carried per recipient").

A subscription carries dust and, for a platform or referral recipient without a USDC token
account, whole legs (``Subscription.dust_carry`` for the creator, a ``LegCarry`` per other
recipient). Those carries are folded into the subscription's next distribution; an ended
subscription has none, so ending it makes one: a **flush distribution** (no close, share 0,
nothing of its own to split) whose payout the engine builds from the carries alone, each folded
into its recipient's leg and paid without the dust threshold. A carry the engine must carry
again (its recipient still has no token account) is flushed by the scheduled sweep
(``flush_ended_carries``) once that account exists; so is a carry of a subscription still
running whose recipient opens its account (``flush_opened_accounts``), without waiting for the
subscription's next profitable close.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.errors import ChainError, InvalidAddress
from profitshare.chain.gateway import ChainGateway
from profitshare.models import (
    AuditEvent,
    CarryReason,
    Distribution,
    DistributionStatus,
    LegCarry,
    LegRole,
    Subscription,
    SubscriptionStatus,
)
from profitshare.services.audit import record_event
from profitshare.services.errors import NotFound

logger = logging.getLogger(__name__)

#: The audit actor of the scheduled sweep.
SWEEP_ACTOR = "schedule:ended-carries"
#: A distribution in these states will still fold the subscription's carries itself (the
#: engine folds every carry into the distribution it runs); a flush beside it would be empty.
IN_FLIGHT = (DistributionStatus.PENDING, DistributionStatus.PROCESSING)


@dataclass(frozen=True)
class EndResult:
    """``subscription``: as ended (``status`` ``ended``, ``ended_at`` set); ``flush_distribution_id``:
    the flush distribution its end made, or None (nothing carried, or a distribution still in
    flight folds the carries); ``created``: False when it had already ended (the first answer)."""

    subscription: Subscription
    flush_distribution_id: int | None
    created: bool


def end_subscription(subscription_id: str, *, actor: str, on_commit: Callable[[int], None] | None = None) -> EndResult:
    """End the subscription ``subscription_id`` (the platform's id) and flush what it carries.

    Under the subscription's row lock: its status becomes ``ended`` with ``ended_at`` now (from
    ``active`` or ``delinquent``), an audit event records it (with the flush's id and the carries),
    and when it carries anything (``dust_carry`` or a ``LegCarry`` above 0) a flush distribution
    is made (``close`` null, share, owed, carry in and realized PnL 0, the subscription's current
    rate and policy, no split terms, ``pending``) for the engine to fold every carry into and pay
    without the dust threshold; ``on_commit(distribution_id)`` runs after commit (the payout task
    is queued there). No flush is made while another distribution of the subscription is
    ``pending`` or ``processing``: that one folds the carries and, the subscription having ended,
    pays them without the threshold; what it carries again is left to ``flush_ended_carries``.

    Intake refuses closes of an ended subscription (409). Ending one that owes open IOUs is
    allowed: its debts stay owed and keep being retried and collected (docs/design.md, "Nothing
    is hard-deleted"). Ending it again changes nothing and returns the first answer
    (``created=False``, the same ``flush_distribution_id``). Raises ``NotFound`` for an unknown
    subscription (nothing written). Rule: docs/design.md, "A subscription ends".
    """
    with transaction.atomic():
        sub = Subscription.objects.select_for_update(no_key=True).filter(subscription_id=subscription_id).first()
        if sub is None:
            raise NotFound("subscription", subscription_id)
        if sub.status == SubscriptionStatus.ENDED:
            return EndResult(sub, _flush_of_end(sub), False)
        before = sub.status
        sub.status, sub.ended_at = SubscriptionStatus.ENDED, timezone.now()
        sub.save(update_fields=["status", "ended_at"])
        carries = _carries(sub)
        flush_id = None
        if carries and not _in_flight(sub):
            flush_id = _make_flush(sub, carries, actor=actor, on_commit=on_commit)
        record_event(
            "subscription", sub.subscription_id, actor=actor, from_status=before, to_status=SubscriptionStatus.ENDED,
            reason="subscription ended", flush_distribution_id=flush_id, carried=carries,
        )
    return EndResult(sub, flush_id, True)


def flush_ended_carries(
    gateway: ChainGateway, *, limit: int = 200, on_commit: Callable[[int], None] | None = None,
    actor: str = SWEEP_ACTOR,
) -> list[int]:
    """The scheduled sweep: a flush distribution (as ``end_subscription`` makes) for each ended
    subscription, at most ``limit`` (oldest first), that carries something payable now and has
    no distribution ``pending`` or ``processing``. Payable now: the creator's carry, a carry of
    reason ``dust``, and a carry of reason ``no_token_account`` whose recipient's USDC token
    account exists now; a subscription carrying only carries whose recipient still has no account
    is left alone (a flush would only carry them again).

    The token accounts are read with one ``gateway.multiple_accounts`` call per sweep (the
    distinct recipients of such carries); when it fails (``ChainError``) the sweep is skipped,
    logged, and nothing changes. Each flush is made under its subscription's row lock (rows
    another worker holds are skipped, for the next sweep) after checking again that it is still
    due; ``on_commit(distribution_id)`` runs after each commit. Returns the ids of the flushes
    made. Rule: docs/design.md, "A subscription ends".
    """
    ended = _without_flight(Subscription.objects.filter(status=SubscriptionStatus.ENDED))
    waiting = sorted(set(
        LegCarry.objects.filter(subscription__in=ended, amount__gt=0, reason=CarryReason.NO_TOKEN_ACCOUNT)
        .values_list("wallet", flat=True)
    ))
    ready = _with_token_account(gateway, waiting, sweep="ended carries")
    if ready is None:
        return []
    payable = Q(reason=CarryReason.DUST) | Q(reason=CarryReason.NO_TOKEN_ACCOUNT, wallet__in=ready)
    carries = LegCarry.objects.filter(payable, subscription=OuterRef("pk"), amount__gt=0)
    due = ended.filter(Q(dust_carry__gt=0) | Exists(carries)).order_by("pk").values_list("pk", flat=True)[:limit]
    made = _flush_each(
        list(due), lambda sub, current: sub.status == SubscriptionStatus.ENDED and any(_payable(c, ready) for c in current),
        reason=FLUSH_OF_END, actor=actor, on_commit=on_commit,
    )
    if made:
        logger.info("ended carries: %d flush distributions made", len(made))
    return made


def flush_opened_accounts(
    gateway: ChainGateway, *, limit: int = 200, on_commit: Callable[[int], None] | None = None,
    actor: str = SWEEP_ACTOR,
) -> list[int]:
    """The scheduled sweep's other half: a flush distribution (as ``end_subscription`` makes)
    for each subscription not ended, at most ``limit`` (oldest first), that carries at least
    ``QV_DUST_THRESHOLD`` base units for a platform or referral recipient for want of its USDC
    token account (reason ``no_token_account``) and whose recipient's account exists now, with
    no distribution ``pending`` or ``processing`` (that one folds the carry itself). The carry
    is then paid within the hour rather than at the subscription's next profitable close
    (docs/design.md, "Dust is carried per recipient": carried until the account exists); the
    engine folds every carry of the subscription into the flush and carries again what is dust.

    One ``gateway.multiple_accounts`` call per sweep, for the distinct recipients of such
    carries; when it fails (``ChainError``) the sweep is skipped, logged, and nothing changes.
    Each flush is made under its subscription's row lock (rows another worker holds are
    skipped) after checking again that it is still due. Returns the ids of the flushes made."""
    threshold = settings.QV_DUST_THRESHOLD
    live = _without_flight(Subscription.objects.exclude(status=SubscriptionStatus.ENDED))
    waiting_carries = LegCarry.objects.filter(reason=CarryReason.NO_TOKEN_ACCOUNT, amount__gte=max(1, threshold))
    waiting = sorted(set(waiting_carries.filter(subscription__in=live).values_list("wallet", flat=True)))
    if not waiting:
        return []
    ready = _with_token_account(gateway, waiting, sweep="carries waiting on token accounts")
    if not ready:
        return []
    opened = waiting_carries.filter(wallet__in=ready)
    due = live.filter(Exists(opened.filter(subscription=OuterRef("pk")))).order_by("pk").values_list("pk", flat=True)[:limit]

    def still_due(sub: Subscription, current: list[list]) -> bool:
        return sub.status != SubscriptionStatus.ENDED and any(
            reason == CarryReason.NO_TOKEN_ACCOUNT and wallet in ready and amount >= threshold
            for role, wallet, amount, reason in current if role != LegRole.CREATOR
        )

    made = _flush_each(list(due), still_due, reason=FLUSH_OF_OPENED_ACCOUNT, actor=actor, on_commit=on_commit)
    if made:
        logger.info("carries waiting on token accounts: %d flush distributions made", len(made))
    return made


#: The audit reasons of the two kinds of flush.
FLUSH_OF_END = "final carry flush of an ended subscription"
FLUSH_OF_OPENED_ACCOUNT = "carry flush: the recipient's token account exists now"


def _flush_each(pks: list[int], still_due, *, reason: str, actor: str, on_commit) -> list[int]:
    """A flush for each subscription of ``pks`` that ``still_due(sub, its carries)`` under its
    row lock (locked rows are skipped) and has nothing in flight; the flushes' ids."""
    made = []
    for pk in pks:
        with transaction.atomic():
            sub = Subscription.objects.select_for_update(skip_locked=True, no_key=True).filter(pk=pk).first()
            if sub is None or _in_flight(sub):
                continue
            current = _carries(sub)
            if not still_due(sub, current):
                continue
            made.append(_make_flush(sub, current, actor=actor, on_commit=on_commit, reason=reason))
    return made


def _carries(sub: Subscription) -> list[list]:
    """What ``sub`` carries, ``[[role, wallet, base units, reason], ...]``: the creator's first."""
    carried = []
    if sub.dust_carry > 0:
        carried.append([LegRole.CREATOR, sub.bot.creator.address, sub.dust_carry, CarryReason.DUST])
    for carry in LegCarry.objects.filter(subscription=sub, amount__gt=0).order_by("pk"):
        carried.append([carry.role, carry.wallet, carry.amount, carry.reason])
    return carried


def _payable(carry: list, ready: set[str]) -> bool:
    _, wallet, _, reason = carry
    return reason != CarryReason.NO_TOKEN_ACCOUNT or wallet in ready


def _in_flight(sub: Subscription) -> bool:
    return Distribution.objects.filter(subscription=sub, status__in=IN_FLIGHT).exists()


def _without_flight(subs):
    return subs.exclude(Exists(Distribution.objects.filter(subscription=OuterRef("pk"), status__in=IN_FLIGHT)))


def _with_token_account(gateway: ChainGateway, wallets: list[str], *, sweep: str) -> set[str] | None:
    """The ``wallets`` (base58) whose USDC token account exists, read in one call; an address
    that does not parse has none. None when the chain cannot be read (``ChainError``: logged as
    ``sweep`` skipped)."""
    owners = []
    for wallet in wallets:
        try:
            owners.append((wallet, parse_address(wallet)))
        except InvalidAddress:
            continue
    if not owners:
        return set()
    try:
        accounts = gateway.multiple_accounts([usdc_ata(owner, gateway.usdc_mint) for _, owner in owners])
    except ChainError as exc:
        logger.warning("%s: token accounts of %d recipients unreadable, sweep skipped: %s", sweep, len(owners), exc)
        return None
    return {wallet for (wallet, _), account in zip(owners, accounts, strict=True) if account is not None}


def _make_flush(sub: Subscription, carries: list[list], *, actor: str, on_commit, reason: str = "") -> int:
    """The flush distribution of ``sub`` (locked by the caller) and its audit event; returns its id."""
    flush = Distribution.objects.create(
        close=None, subscription=sub, creator_id=sub.bot.creator_id, bot_id=sub.bot_id, realized_pnl=0,
        profit_share_bps=sub.profit_share_bps, policy=sub.policy, share=0, carry_in=0, owed=0, split_terms={},
    )
    record_event(
        "distribution", flush.pk, actor=actor, to_status=flush.status,
        reason=reason or FLUSH_OF_END, subscription=sub.subscription_id, carried=carries,
    )
    if on_commit is not None:
        flush_id = flush.pk
        transaction.on_commit(lambda: on_commit(flush_id))
    return flush.pk


def _flush_of_end(sub: Subscription) -> int | None:
    """The flush distribution the subscription's end made, as its audit event records it."""
    data = (
        AuditEvent.objects.filter(entity="subscription", entity_id=sub.subscription_id, to_status=SubscriptionStatus.ENDED)
        .order_by("created_at", "id").values_list("data", flat=True).first()
    )
    return (data or {}).get("flush_distribution_id")
