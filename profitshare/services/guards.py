"""Debts block exits (docs/design.md, "Debts block exits"): a subscriber's withdrawal or bot
deletion first retries the open IOUs, then is allowed or refused with what is still owed."""

from __future__ import annotations

from collections.abc import Callable

from profitshare.models import IOU, IouStatus, Subscription
from profitshare.selectors.debts import GuardAnswer, debt_state
from profitshare.services.errors import NotFound


def guard(subscription_id: str, *, retry: Callable[[int], object] | None = None) -> GuardAnswer:
    """Answer whether the subscriber may withdraw / delete the bot now.

    ``retry(iou_id)``: called first for each open IOU (the engine's retry, or a queued one);
    pass None to only read. IOUs past their TTL (``expires_at``) no longer block but stay owed
    (``selectors.debts.debt_state`` is the read). Raises ``NotFound``.
    """
    sub = Subscription.objects.filter(subscription_id=subscription_id).first()
    if sub is None:
        raise NotFound("subscription", subscription_id)
    if retry is not None:
        for iou_id in IOU.objects.filter(subscription=sub, status=IouStatus.OPEN).values_list("pk", flat=True):
            retry(iou_id)
        sub.refresh_from_db(fields=["status"])  # a paid debt clears delinquency
    return debt_state(sub)["guard"]
