"""``POST /trade-closes`` and ``GET /trade-closes/{close_id}`` (platform)."""

from __future__ import annotations

from ninja import Router, Status

from profitshare.api.auth import PlatformAuth
from profitshare.api.routes.common import (
    AUTH_ERRORS,
    actor,
    enqueue_or_leave_for_resolver,
    refuse_unknown_query,
)
from profitshare.api.schemas import CloseAccepted, CloseIn, CloseStatusOut, ErrorOut, PathId
from profitshare.selectors.closes import NOTHING_OWED, close_status
from profitshare.services.errors import NotFound
from profitshare.services.intake import CloseReport, record_close

router = Router(tags=["closes"], auth=PlatformAuth())


@router.post(
    "/trade-closes", response={200: CloseAccepted, 202: CloseAccepted, 404: ErrorOut, 409: ErrorOut, **AUTH_ERRORS}
)
def report_close(request, payload: CloseIn):
    """Record one close (202); its payout is queued after commit when it owes the creator
    anything (``status`` is then ``pending``, else ``nothing_owed``). The same close id and body
    again: 200 with the current status, no new work; the same id with another body: 409;
    unknown subscription: 404."""
    refuse_unknown_query(request)
    result = record_close(
        CloseReport(**payload.model_dump()), actor=actor(request), on_commit=enqueue_or_leave_for_resolver
    )
    status = result.distribution.status if result.distribution is not None else NOTHING_OWED
    return Status(202 if result.created else 200, {"close_id": result.close.close_id, "status": status})


@router.get("/trade-closes/{close_id}", response={200: CloseStatusOut, 404: ErrorOut, **AUTH_ERRORS})
def get_close(request, close_id: PathId):
    """A close's payout: status, share / paid / owed / carried (USDC base units), landed
    payout signatures, oldest first, and the share's legs (who it pays, each with its amount,
    paid / owed / carried and the signature that last paid it). 404 unknown close."""
    refuse_unknown_query(request)
    found = close_status(close_id)
    if found is None:
        raise NotFound("close", close_id)
    return found
