"""Debts block exits (docs/design.md, "Debts block exits"): a subscriber's withdrawal or bot
deletion first retries the open IOUs, then is allowed or refused with what is still owed."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, Sum
from django.utils import timezone

from profitshare.models import IOU, IouStatus, Subscription, SubscriptionStatus
from profitshare.services.errors import NotFound

BLOCKING = (IouStatus.OPEN, IouStatus.PROCESSING)


@dataclass(frozen=True)
class GuardAnswer:
    """``owed``: USDC base units still owed (blocking and expired IOUs); ``blocking_owed``: the
    part that blocks (IOUs within their TTL); ``delinquent``: refused new copied entries."""

    can_withdraw: bool
    can_delete: bool
    owed: int
    blocking_owed: int
    delinquent: bool

    @property
    def message(self) -> str:
        if self.can_withdraw:
            return "nothing blocks this subscription"
        return f"{self.blocking_owed} USDC base units are still owed to the creator; retry later"


def owed_by(subscription: Subscription, statuses) -> int:
    """Base units still owed on the subscription's IOUs with ``statuses``."""
    total = IOU.objects.filter(subscription=subscription, status__in=statuses).aggregate(
        owed=Sum(F("amount") - F("paid_amount"))
    )["owed"]
    return total or 0


def guard(subscription_id: str, *, retry=None) -> GuardAnswer:
    """Answer whether the subscriber may withdraw / delete the bot now.

    ``retry(iou_id)``: called first for each open IOU (the engine's retry); pass None to only
    read. IOUs past their TTL (``expires_at``) no longer block but stay owed.
    Raises ``NotFound``.
    """
    sub = Subscription.objects.filter(subscription_id=subscription_id).first()
    if sub is None:
        raise NotFound("subscription", subscription_id)
    if retry is not None:
        for iou_id in IOU.objects.filter(subscription=sub, status=IouStatus.OPEN).values_list("pk", flat=True):
            retry(iou_id)
    now = timezone.now()
    blocking = IOU.objects.filter(subscription=sub, status__in=BLOCKING, expires_at__gt=now).aggregate(
        owed=Sum(F("amount") - F("paid_amount"))
    )["owed"] or 0
    owed = owed_by(sub, (IouStatus.OPEN, IouStatus.PROCESSING, IouStatus.EXPIRED))
    sub.refresh_from_db(fields=["status"])
    allowed = blocking == 0
    return GuardAnswer(
        can_withdraw=allowed,
        can_delete=allowed,
        owed=owed,
        blocking_owed=blocking,
        delinquent=sub.status == SubscriptionStatus.DELINQUENT,
    )
