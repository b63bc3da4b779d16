"""What blocks a subscriber: the one read behind the withdrawal guard (``services.guards``), its
API route and the subscriber's debt banner (docs/design.md, "Debts block exits" and "TTL frees
the subscriber, not the debt"). Amounts in USDC base units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Max, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from profitshare.models import IOU, IouReason, IouStatus, Subscription, SubscriptionStatus
from profitshare.models.delinquency import DelinquencyWatch


@dataclass(frozen=True)
class GuardAnswer:
    """Whether the subscriber may leave now. ``owed``: USDC base units still owed on active
    IOUs (blocking and expired); ``blocking_owed``: the part that blocks (open or processing
    IOUs within their TTL); ``delinquent``: the subscription is refused new copied entries."""

    can_withdraw: bool
    can_delete: bool
    owed: int
    blocking_owed: int
    delinquent: bool

    @property
    def message(self) -> str:
        """One sentence for the subscriber: nothing blocks, or how much is still owed."""
        if self.can_withdraw:
            return "nothing blocks this subscription"
        return f"{self.blocking_owed} USDC base units are still owed to the creator; retry later"


def blocking(now: datetime) -> Q:
    """The IOUs that block exits at ``now``: open or processing, and not past ``expires_at``."""
    return Q(status__in=IouStatus.BLOCKING, expires_at__gt=now)


def debt_state(subscription: Subscription, *, now: datetime | None = None) -> dict:
    """What blocks ``subscription`` now, in one query: ``{"guard": GuardAnswer, "retrying":
    bool, "sol_needed": int | None}`` (``retrying``: a retry of one of its IOUs is running;
    ``sol_needed``: the lamports its agent wallet needs when a blocking IOU is owed for lack
    of SOL). ``subscription.status`` is used as loaded; nothing is retried
    (``services.guards.guard`` retries first). An ended subscription is ``delinquent`` while its
    delinquency watch holds an outflow found after the end (one more query, for ended ones only)."""
    now = now or timezone.now()
    remaining = F("amount") - F("paid_amount")
    sums = IOU.objects.filter(subscription_id=subscription.pk, status__in=IouStatus.ACTIVE).aggregate(
        blocking=Coalesce(Sum(remaining, filter=blocking(now)), 0),
        owed=Coalesce(Sum(remaining), 0),
        processing=Count("pk", filter=Q(status=IouStatus.PROCESSING)),
        sol_needed=Max("sol_needed", filter=blocking(now) & Q(reason=IouReason.INSUFFICIENT_SOL)),
    )
    allowed = sums["blocking"] == 0
    answer = GuardAnswer(
        can_withdraw=allowed,
        can_delete=allowed,
        owed=sums["owed"],
        blocking_owed=sums["blocking"],
        delinquent=subscription.status == SubscriptionStatus.DELINQUENT or (
            subscription.status == SubscriptionStatus.ENDED
            and DelinquencyWatch.objects.filter(subscription_id=subscription.pk, outflow_signature__gt="").exists()
        ),
    )
    return {"guard": answer, "retrying": sums["processing"] > 0, "sol_needed": sums["sol_needed"]}
