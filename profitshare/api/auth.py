"""HMAC request signing of the intake API.

Every request carries two headers:

* ``X-QV-Timestamp``: unix seconds (decimal digits) when the request was signed;
* ``X-QV-Signature``: lowercase hex HMAC-SHA256 of ``"{timestamp}.{raw body}"`` (the raw body
  bytes exactly as sent; empty for GET) keyed with a shared secret.

Two secrets (Django settings): ``QV_INTAKE_SECRET`` (the trading platform) and
``QV_ADMIN_SECRET`` (admin tooling). Platform routes accept either; admin routes accept only the
admin secret. A timestamp more than ``QV_INTAKE_MAX_SKEW_SECONDS`` (default 300) in the past or
in the future, a missing header or a wrong signature is refused with 401; a valid platform
signature on an admin route with 403. Signatures are compared with ``hmac.compare_digest``.
An empty secret setting never authenticates anything.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthenticationError, AuthorizationError
from ninja.security.base import AuthBase

TIMESTAMP_HEADER = "X-QV-Timestamp"
SIGNATURE_HEADER = "X-QV-Signature"
PLATFORM = "platform"
ADMIN = "admin"
_DIGITS = re.compile(r"\d{1,15}")


def sign(secret: str, timestamp: int | str, body: bytes = b"") -> str:
    """Hex HMAC-SHA256 of ``b"{timestamp}." + body`` with ``secret`` (what clients send as
    ``X-QV-Signature``)."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _matches(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    if not secret:
        return False
    expected = sign(secret, timestamp, body).encode("ascii")
    return hmac.compare_digest(expected, signature.strip().lower().encode("utf-8"))


def verify(request: HttpRequest, *, admin_only: bool) -> str:
    """Check the request's signature; returns the principal, ``"admin"`` or ``"platform"``.

    Raises ``AuthenticationError`` (401: missing or malformed headers, stale or future
    timestamp, no secret matches) or ``AuthorizationError`` (403: the platform secret on an
    admin route).
    """
    timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not signature:
        raise AuthenticationError(401, f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required")
    if not _DIGITS.fullmatch(timestamp):
        raise AuthenticationError(401, f"{TIMESTAMP_HEADER} must be unix seconds")
    skew = int(settings.QV_INTAKE_MAX_SKEW_SECONDS)
    if abs(time.time() - int(timestamp)) > skew:
        raise AuthenticationError(401, f"request timestamp is more than {skew} s away from now")
    body = request.body
    if _matches(settings.QV_ADMIN_SECRET, timestamp, body, signature):
        return ADMIN
    if _matches(settings.QV_INTAKE_SECRET, timestamp, body, signature):
        if admin_only:
            raise AuthorizationError(403, "this route needs the admin secret")
        return PLATFORM
    raise AuthenticationError(401, "invalid signature")


class PlatformAuth(AuthBase):
    """Ninja auth for platform routes: the platform or the admin secret. ``request.auth`` is
    the principal (``"platform"`` or ``"admin"``)."""

    openapi_type = "apiKey"
    openapi_in = "header"
    openapi_name = SIGNATURE_HEADER
    openapi_description = (
        f"Hex HMAC-SHA256 of '{{timestamp}}.{{raw body}}' with the platform (or admin) secret; "
        f"the timestamp (unix seconds) goes in {TIMESTAMP_HEADER}."
    )

    def __call__(self, request: HttpRequest) -> str:
        return verify(request, admin_only=False)


class AdminAuth(AuthBase):
    """Ninja auth for admin routes: the admin secret only (the platform secret gets 403)."""

    openapi_type = "apiKey"
    openapi_in = "header"
    openapi_name = SIGNATURE_HEADER
    openapi_description = (
        f"Hex HMAC-SHA256 of '{{timestamp}}.{{raw body}}' with the admin secret; the timestamp "
        f"(unix seconds) goes in {TIMESTAMP_HEADER}."
    )

    def __call__(self, request: HttpRequest) -> str:
        return verify(request, admin_only=True)
