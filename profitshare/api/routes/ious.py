"""``GET /ious`` (platform) and the admin actions ``POST /ious/{id}/retry`` and ``/void``."""

from __future__ import annotations

from typing import Annotated

from ninja import Path, Query, Router

from profitshare.api.auth import AdminAuth, PlatformAuth
from profitshare.api.routes import common
from profitshare.api.routes.common import ADMIN_ERRORS, AUTH_ERRORS, actor, refuse_unknown_query
from profitshare.api.schemas import ErrorOut, IouActionOut, IouFilters, IouPage, VoidIn
from profitshare.models import IOU
from profitshare.selectors.ious import iou_exists, list_ious
from profitshare.services import engine
from profitshare.services.errors import Conflict, NotFound
from profitshare.services.ious import void_iou

router = Router(tags=["ious"])

QUERY_FIELDS = frozenset(IouFilters.model_fields)
IouId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def render_action(iou: IOU) -> dict:
    """The ``IouActionOut`` body: ``remaining`` = amount − paid so far (base units)."""
    return {"iou_id": iou.pk, "status": iou.status, "remaining": iou.remaining}


@router.get("/ious", response={200: IouPage, **AUTH_ERRORS}, auth=PlatformAuth())
def get_ious(request, filters: Query[IouFilters]):
    """IOUs by ascending id, optionally by ``status`` and ``subscription_id``. Pass the page's
    ``next`` as ``cursor`` for the following page; ``limit`` 1..200 (default 50)."""
    refuse_unknown_query(request, QUERY_FIELDS)
    return list_ious(**filters.model_dump())


@router.post(
    "/ious/{iou_id}/retry", response={200: IouActionOut, 404: ErrorOut, 409: ErrorOut, **ADMIN_ERRORS}, auth=AdminAuth()
)
def retry(request, iou_id: IouId):
    """Retry an open or expired IOU now, whatever its backoff. 404 unknown; 409 when it is not
    retryable (paid, voided, being retried) or its agent wallet stays busy with another payout
    for ``LOCK_TIMEOUT_SECONDS`` ("payout in progress"; nothing is changed then: the wallet lock
    is taken before the IOU is claimed)."""
    refuse_unknown_query(request)
    if not iou_exists(iou_id):
        raise NotFound("iou", str(iou_id))
    iou = engine.retry_iou_now(iou_id, actor=actor(request), lock_timeout=common.LOCK_TIMEOUT_SECONDS)
    if iou is None:
        raise Conflict(f"IOU {iou_id} is not retryable now (paid, voided or being retried)")
    return render_action(iou)


@router.post(
    "/ious/{iou_id}/void", response={200: IouActionOut, 404: ErrorOut, 409: ErrorOut, **ADMIN_ERRORS}, auth=AdminAuth()
)
def void(request, iou_id: IouId, payload: VoidIn):
    """Forgive what remains of an open or expired IOU, with a reason (422 when empty). 404
    unknown; 409 when paid, already voided or being retried."""
    refuse_unknown_query(request)
    return render_action(void_iou(iou_id, reason=payload.reason, actor=actor(request)))
