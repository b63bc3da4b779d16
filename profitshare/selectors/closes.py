"""Read-only queries about reported closes and their distributions."""

from __future__ import annotations

from profitshare.models import AttemptStatus, Distribution, PayoutAttempt, TradeClose

NOTHING_OWED = "nothing_owed"


def close_status(close_id: str) -> dict | None:
    """The payout state of one close.

    Returns ``{"close_id": str, "status": str, "share": int, "paid": int, "owed": int,
    "carried": int, "signatures": [str, ...]}``: ``status`` is the distribution's status
    (``pending|processing|paid|partially_paid|owed|carried``) or ``"nothing_owed"`` when the
    close owes nothing (no distribution); amounts in USDC base units from the distribution (0
    when none); ``signatures`` of its landed payout attempts, oldest first.
    None for an unknown close id.
    """
    close = TradeClose.objects.filter(close_id=close_id).only("pk", "close_id").first()
    if close is None:
        return None
    dist = Distribution.objects.filter(close_id=close.pk).only(
        "pk", "status", "share", "paid", "owed", "carried"
    ).first()
    if dist is None:
        return {
            "close_id": close.close_id,
            "status": NOTHING_OWED,
            "share": 0,
            "paid": 0,
            "owed": 0,
            "carried": 0,
            "signatures": [],
        }
    signatures = list(
        PayoutAttempt.objects.filter(distribution_id=dist.pk, status=AttemptStatus.LANDED)
        .order_by("created_at", "id")
        .values_list("signature", flat=True)
    )
    return {
        "close_id": close.close_id,
        "status": dist.status,
        "share": dist.share,
        "paid": dist.paid,
        "owed": dist.owed,
        "carried": dist.carried,
        "signatures": signatures,
    }
