"""The intake API (django-ninja), mounted at ``/api/v1/``; OpenAPI at ``/api/v1/openapi.json``.

Signed with HMAC (``profitshare.api.auth``). Errors are JSON:

* 422 ``{"detail": [{"field": ..., "message": ...}]}``: a malformed body, query or path
  (pydantic) or a service's ``InvalidInput``;
* 404 ``{"detail": ...}``: ``NotFound``; 409: ``Conflict``, or ``LockTimeout`` ("payout in
  progress"); 401 / 403: signature refused.

Every service call is atomic, so nothing is written when a 4xx is answered (except a retry
refused with "payout in progress": the IOU stays claimed for the resolver, see the route).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from profitshare.api.routes import bots, closes, ious, referrals, subscriptions
from profitshare.api.schemas import BASE58_PATTERN, PRINTABLE_PATTERN
from profitshare.services.errors import Conflict, InvalidInput, NotFound
from profitshare.services.locks import LockTimeout

logger = logging.getLogger(__name__)
_LOCATIONS = {"body", "query", "path", "header", "cookie", "form", "file"}

api = NinjaAPI(
    title="QuantumVault profit share intake",
    version="1",
    description=(
        "Intake of the QuantumVault payout system. Amounts are integers in USDC base units "
        "(6 decimals); addresses are base58. Requests are signed (signature v2): X-QV-Timestamp "
        "(unix seconds) and X-QV-Signature, the hex HMAC-SHA256 of "
        "'{timestamp}.{METHOD}.{path}.{raw body}' where METHOD is upper-case and path is the "
        "request path with its query string exactly as sent (e.g. /api/v1/ious?status=open)."
    ),
    urls_namespace="api-v1",
    # Swagger UI only where a setting asks for it (DEBUG, or QV_API_DOCS=1); assets from static
    docs_url="/docs" if settings.QV_API_DOCS else None,
)
api.add_router("", bots.router)
api.add_router("", subscriptions.router)
api.add_router("", closes.router)
api.add_router("", ious.router)
api.add_router("", referrals.router)


def field_name(loc) -> str:
    """The client-facing name of a pydantic error location: ``("body", "payload", "a", 0)`` →
    ``"a.0"``; ``("query", "limit")`` → ``"limit"``; the whole body → ``"body"``."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[2:]  # drop "body" and the view's parameter name
        if not parts:
            return "body"
    elif parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


#: What a pattern means, said to the client instead of the regular expression.
_PATTERN_MESSAGES = {
    PRINTABLE_PATTERN: "must be printable text: no control characters, not blank, no surrounding whitespace",
    BASE58_PATTERN: "not a valid Solana address (base58, 32 bytes)",
}


def _message(err: dict) -> str:
    if err.get("type") == "string_pattern_mismatch":
        pattern = (err.get("ctx") or {}).get("pattern")
        if pattern in _PATTERN_MESSAGES:
            return _PATTERN_MESSAGES[pattern]
    return err.get("msg", "invalid")


def _unprocessable(request: HttpRequest, errors: list[dict]) -> HttpResponse:
    return api.create_response(request, {"detail": errors}, status=422)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """Pydantic errors → 422 naming each field."""
    errors = [{"field": field_name(err.get("loc", ())), "message": _message(err)} for err in exc.errors]
    return _unprocessable(request, errors)


@api.exception_handler(InvalidInput)
def on_invalid_input(request: HttpRequest, exc: InvalidInput) -> HttpResponse:
    """A service refused a field's value → 422."""
    return _unprocessable(request, [{"field": exc.field, "message": exc.message}])


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """Ninja's own errors; a body that is not JSON (ninja's 400) is a 422 on ``body``."""
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        return _unprocessable(request, [{"field": "body", "message": "not valid JSON"}])
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(NotFound)
def on_not_found(request: HttpRequest, exc: NotFound) -> HttpResponse:
    """→ 404 ``{"detail": "<what> '<key>' not found"}``."""
    return api.create_response(request, {"detail": str(exc)}, status=404)


@api.exception_handler(Conflict)
def on_conflict(request: HttpRequest, exc: Conflict) -> HttpResponse:
    """→ 409 with the service's message."""
    return api.create_response(request, {"detail": str(exc)}, status=409)


@api.exception_handler(LockTimeout)
def on_lock_timeout(request: HttpRequest, exc: LockTimeout) -> HttpResponse:
    """The agent wallet is busy with another payout → 409."""
    return api.create_response(request, {"detail": "payout in progress"}, status=409)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The database refused or dropped the connection -> 503 with ``Retry-After``; nothing was
    committed (every service call is one transaction)."""
    logger.warning("database unavailable: %s %s answered 503 (%s: %s)", request.method, request.path,
                   type(exc).__name__, exc)
    response = api.create_response(request, {"detail": "the database is unavailable; retry shortly"}, status=503)
    response["Retry-After"] = str(settings.QV_RETRY_AFTER_SECONDS)
    return response


__all__ = ["api", "field_name"]
