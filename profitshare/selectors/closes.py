"""Read-only queries about reported closes and their distributions."""

from __future__ import annotations

from profitshare.models import (
    AttemptStatus,
    Distribution,
    DistributionLeg,
    LegRole,
    PayoutAttempt,
    TradeClose,
)

NOTHING_OWED = "nothing_owed"
_ROLE_ORDER = {role.value: index for index, role in enumerate(LegRole)}


def close_status(close_id: str) -> dict | None:
    """The payout state of one close.

    Returns ``{"close_id": str, "status": str, "share": int, "paid": int, "owed": int,
    "carried": int, "signatures": [str, ...], "legs": [leg, ...]}``: ``status`` is the
    distribution's status (``pending|processing|paid|partially_paid|owed|carried|voided``) or
    ``"nothing_owed"`` when the close owes nothing (no distribution); amounts in USDC base units
    from the distribution (0 when none); ``signatures`` of its landed payout attempts, oldest
    first. Each leg (docs/design.md, "Splits add up": the recipients of the share, creator first,
    then platform, referral levels 1-3) is ``{"role", "wallet", "amount" (its part of the
    share), "paid", "owed", "carried", "signature"}``: the last landed payout attempt that paid
    it (an attempt recorded without legs paid the creator's), or None. No legs without a
    distribution. None for an unknown close id.
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
            "legs": [],
        }
    legs = sorted(
        DistributionLeg.objects.filter(distribution_id=dist.pk).values(
            "pk", "role", "wallet", "amount", "paid", "owed", "carried"
        ),
        key=lambda leg: (_ROLE_ORDER[leg["role"]], leg["pk"]),
    )
    creator_leg = next((leg["pk"] for leg in legs if leg["role"] == LegRole.CREATOR), None)
    signatures, last_paid = [], {}
    landed = (
        PayoutAttempt.objects.filter(distribution_id=dist.pk, status=AttemptStatus.LANDED)
        .order_by("created_at", "id")
        .values_list("signature", "legs")
    )
    for signature, paid_legs in landed:
        signatures.append(signature)
        for leg_id in [leg[0] for leg in paid_legs] if paid_legs else [creator_leg]:
            last_paid[leg_id] = signature
    return {
        "close_id": close.close_id,
        "status": dist.status,
        "share": dist.share,
        "paid": dist.paid,
        "owed": dist.owed,
        "carried": dist.carried,
        "signatures": signatures,
        "legs": [
            {"role": leg["role"], "wallet": leg["wallet"], "amount": leg["amount"], "paid": leg["paid"],
             "owed": leg["owed"], "carried": leg["carried"], "signature": last_paid.get(leg["pk"])}
            for leg in legs
        ],
    }
