"""Request guards that apply to every route (listed in ``MIDDLEWARE``):

* :class:`RequestGuardMiddleware`: a NUL byte in the path, query or form (PostgreSQL refuses it
  in text) is a 404 on pages (the API's schema answers 422 for its own parameters); a body over
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django's 2.5 MB) is a 413, with the API's JSON error body
  (``{"detail": ...}``) under ``/api/``; signed-in pages (a wallet or a staff session) are
  ``Cache-Control: no-store``; a database that cannot take the request (connection refused or
  reset) is a 503 with ``Retry-After`` (JSON under ``/api/``) instead of a 500.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from profitshare.views.common import SESSION_WALLET

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


def unavailable_response(request, what: str) -> HttpResponse:
    """503 with ``Retry-After``: ``{"detail": ...}`` under ``/api/``, plain text on pages."""
    detail = f"{what} is unavailable; retry shortly"
    if request.path.startswith(API_PREFIX):
        response = JsonResponse({"detail": detail}, status=503)
    else:
        response = HttpResponse(detail + "\n", status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(settings.QV_RETRY_AFTER_SECONDS)
    return response


def _has_nul(request) -> bool:
    if "\x00" in request.path:
        return True
    for data in (request.GET, request.POST if request.method == "POST" else None):
        if data is None:
            continue
        for key, values in data.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return True
    return False


def _too_large(request) -> bool:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return limit is not None and length > limit


class RequestGuardMiddleware:
    """See the module docstring. Place it after the session and authentication middleware."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        api = request.path.startswith(API_PREFIX)
        if _too_large(request):
            detail = f"request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
            if api:
                return JsonResponse({"detail": detail}, status=413)
            return HttpResponse(detail + "\n", status=413, content_type="text/plain; charset=utf-8")
        if not api and _has_nul(request):
            raise Http404("no such page")
        response = self.get_response(request)
        if not api and _signed_in(request):
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response

    def process_exception(self, request, exception):
        """Pages: the database refused or dropped the connection -> 503 (the API's own handler
        answers the same for its routes)."""
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("database unavailable: %s %s answered 503 (%s)", request.method, request.path,
                           type(exception).__name__)
            return unavailable_response(request, "the database")
        return None


def _signed_in(request) -> bool:
    """A wallet (Sign-In With Solana) or a Django user (staff) is signed in on this session."""
    session = getattr(request, "session", None)
    if session is None:
        return False
    try:
        return bool(session.get(SESSION_WALLET) or session.get(SESSION_KEY))
    except DatabaseError:
        return False
