"""``POST /subscriptions``, ``GET /subscriptions/{id}/guard`` (a read), ``POST
/subscriptions/{id}/guard`` (retry the open debts, then answer) and ``POST
/subscriptions/{id}/end`` (platform)."""

from __future__ import annotations

from ninja import Router, Status

from profitshare.api.auth import PlatformAuth
from profitshare.api.routes import common
from profitshare.api.routes.common import (
    AUTH_ERRORS,
    actor,
    enqueue_or_leave_for_resolver,
    refuse_unknown_query,
)
from profitshare.api.schemas import (
    ErrorOut,
    GuardOut,
    PathId,
    SubscriptionEndOut,
    SubscriptionIn,
    SubscriptionOut,
)
from profitshare.services import engine
from profitshare.services.guards import guard
from profitshare.services.locks import LockTimeout
from profitshare.services.subscription_end import end_subscription
from profitshare.services.subscriptions import create_subscription

router = Router(tags=["subscriptions"], auth=PlatformAuth())

GUARD_ACTOR = "api:guard"


@router.post(
    "/subscriptions", response={200: SubscriptionOut, 201: SubscriptionOut, 404: ErrorOut, 409: ErrorOut, **AUTH_ERRORS}
)
def subscribe(request, payload: SubscriptionIn):
    """Subscribe a wallet to a bot (201) with a new agent wallet (its public key is returned;
    the key stays encrypted server-side). The identical request again: 200, same body; the same
    id with other fields: 409; unknown or deleted bot: 404."""
    refuse_unknown_query(request)
    result = create_subscription(**payload.model_dump(), actor=actor(request))
    sub = result.subscription
    body = {"subscription_id": sub.subscription_id, "agent_wallet": sub.agent_wallet.pubkey}
    return Status(201 if result.created else 200, body)


@router.post("/subscriptions/{subscription_id}/end", response={200: SubscriptionEndOut, 404: ErrorOut, **AUTH_ERRORS})
def end(request, subscription_id: PathId):
    """End the subscription: it takes no new closes (409), its open debts stay owed and keep
    being retried, and what it carried (dust, legs of recipients without a USDC token account) is
    paid by a flush distribution queued after commit (``flush_distribution_id``; null when it
    carried nothing, or a payout still in flight takes the carries). Ending it again: 200 with the
    first answer, nothing new. Empty body. 404 unknown subscription."""
    refuse_unknown_query(request)
    result = end_subscription(subscription_id, actor=actor(request), on_commit=enqueue_or_leave_for_resolver)
    sub = result.subscription
    return {
        "subscription_id": sub.subscription_id, "status": sub.status, "ended_at": sub.ended_at,
        "flush_distribution_id": result.flush_distribution_id,
    }


def retry_for_guard(iou_id: int) -> None:
    """The guard's retry (``actor="api:guard"``): pay the IOU now if its agent wallet is free
    within ``LOCK_TIMEOUT_SECONDS``; a busy wallet changes nothing (the IOU keeps blocking)."""
    try:
        engine.retry_iou_now(iou_id, actor=GUARD_ACTOR, lock_timeout=common.LOCK_TIMEOUT_SECONDS)
    except LockTimeout:
        pass


@router.get("/subscriptions/{subscription_id}/guard", response={200: GuardOut, 404: ErrorOut, **AUTH_ERRORS})
def subscription_guard(request, subscription_id: PathId):
    """May the subscriber withdraw or delete the bot now? Answered from the ledger only: a GET
    changes nothing and moves no money (a client or a replay may repeat it). IOUs within their
    TTL block; ``owed``: USDC base units still owed. To retry the open debts first, POST to the
    same path. 404 unknown subscription."""
    refuse_unknown_query(request)
    return _answer(guard(subscription_id))


@router.post("/subscriptions/{subscription_id}/guard", response={200: GuardOut, 404: ErrorOut, **AUTH_ERRORS})
def subscription_guard_retry(request, subscription_id: PathId):
    """Retry each open IOU of the subscription now (where its agent wallet is free within a few
    seconds; a busy wallet changes nothing), then answer as the GET does: what the subscriber
    wants before a withdrawal or a bot deletion. Empty body. 404 unknown subscription."""
    refuse_unknown_query(request)
    return _answer(guard(subscription_id, retry=retry_for_guard))


def _answer(answer) -> dict:
    return {
        "can_withdraw": answer.can_withdraw,
        "can_delete": answer.can_delete,
        "owed": answer.owed,
        "delinquent": answer.delinquent,
    }
