"""Helpers shared by the routers: the audit actor of a request, the documented errors, and
queueing a committed distribution's payout."""

from __future__ import annotations

import logging

from django.http import HttpRequest

from profitshare.api.schemas import ErrorOut, ValidationErrorOut
from profitshare.services.errors import InvalidInput
from profitshare.tasks import enqueue_distribution

logger = logging.getLogger(__name__)

#: Error answers every signed route may give (documented in the OpenAPI schema).
AUTH_ERRORS = {401: ErrorOut, 413: ErrorOut, 422: ValidationErrorOut, 503: ErrorOut}
ADMIN_ERRORS = {401: ErrorOut, 403: ErrorOut, 413: ErrorOut, 422: ValidationErrorOut, 503: ErrorOut}

#: Seconds a request waits for an agent wallet busy with another payout before answering 409
#: "payout in progress" (retry) or answering with the IOU still blocking (guard). Kept well under
#: common HTTP worker timeouts; the engine's own default (60 s) suits background workers.
LOCK_TIMEOUT_SECONDS = 10.0


def refuse_unknown_query(request: HttpRequest, allowed: frozenset[str] = frozenset()) -> None:
    """Raise ``InvalidInput`` (422 naming the parameter) for a query parameter the route does
    not define: the OpenAPI schema allows none but its own."""
    for name in request.GET:
        if name not in allowed:
            raise InvalidInput(name, "unknown query parameter")


def actor(request: HttpRequest) -> str:
    """The audit actor of a signed request: ``"api:platform"`` or ``"api:admin"`` (whose secret
    signed it; see ``profitshare.api.auth``)."""
    return f"api:{request.auth}"


def enqueue_or_leave_for_resolver(distribution_id: int) -> None:
    """Queue the payout of a committed distribution; if the broker cannot take it (down,
    unreachable), log it and leave the distribution ``pending``: it is recorded, so the stale
    resolver (``qv-stale-resolver``) finds it in the ledger and pays it. The request that made
    it (a close, 202; a subscription's end, 200) is answered the same either way."""
    try:
        enqueue_distribution(distribution_id)
    except Exception as exc:  # any broker failure: the ledger row is the source of truth
        logger.error(
            "distribution %s recorded but its payout task could not be queued (%s: %s); "
            "the stale resolver will pay it from the ledger", distribution_id, type(exc).__name__, exc,
        )
