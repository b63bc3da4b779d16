"""Read-only queries about IOUs (debts the engine could not pay yet)."""

from __future__ import annotations

from django.db.models import F

from profitshare.models import IOU

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def iou_exists(iou_id: int) -> bool:
    """Whether an IOU with this primary key exists."""
    return IOU.objects.filter(pk=iou_id).exists()


def list_ious(
    *,
    status: str | None = None,
    subscription_id: str | None = None,
    cursor: int | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> dict:
    """One page of IOUs in ascending id order (keyset pagination).

    ``status``: only IOUs in that status; ``subscription_id``: the subscription's external id;
    ``cursor``: only IOUs with an id above it (pass the previous page's ``next``); ``limit``:
    page size, clamped to 1..``MAX_PAGE_SIZE``.

    Returns ``{"items": [{"iou_id": int, "close_id": str | None, "subscription_id": str,
    "amount": int, "reason": str, "status": str, "attempts": int, "created_at": datetime}],
    "next": int | None}`` where ``amount`` is what remains owed (``amount - paid_amount``, USDC
    base units), ``close_id`` is None for a distribution without a close (final dust flush),
    and ``next`` is the cursor of the following page (None on the last page).
    """
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    qs = IOU.objects.all()
    if status:
        qs = qs.filter(status=status)
    if subscription_id:
        qs = qs.filter(subscription__subscription_id=subscription_id)
    if cursor is not None:
        qs = qs.filter(pk__gt=cursor)
    rows = list(
        qs.order_by("pk").values(
            "pk", "reason", "status", "attempts", "created_at",
            close_id=F("distribution__close__close_id"),
            subscription_ext_id=F("subscription__subscription_id"),
            remaining=F("amount") - F("paid_amount"),
        )[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "iou_id": row["pk"],
            "close_id": row["close_id"],
            "subscription_id": row["subscription_ext_id"],
            "amount": row["remaining"],
            "reason": row["reason"],
            "status": row["status"],
            "attempts": row["attempts"],
            "created_at": row["created_at"],
        }
        for row in rows
    ]
    return {"items": items, "next": rows[-1]["pk"] if more else None}
