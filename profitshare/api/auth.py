"""HMAC request signing of the intake API (signature v2).

Every request carries two headers:

* ``X-QV-Timestamp``: unix seconds (decimal digits) when the request was signed;
* ``X-QV-Signature``: lowercase hex HMAC-SHA256 of ``"{timestamp}.{METHOD}.{path}.{raw body}"``
  keyed with a shared secret, where ``METHOD`` is the upper-case HTTP method, ``path`` the
  request path with its query string exactly as sent (``/api/v1/ious?status=open``; no ``?``
  without a query) and ``raw body`` the body bytes exactly as sent (empty for GET).

A signature therefore holds for one method, path and query only: replayed to another IOU, route
or query it is refused (401). The server reads the path as Django does
(``request.get_full_path()``: the path percent-encoded as RFC 3986 requires, the query string
untouched), which is what a client sends when it percent-encodes with upper-case hex, as httpx and
``urllib.parse.quote`` do.

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


def sign(secret: str, timestamp: int | str, method: str, path: str, body: bytes = b"") -> str:
    """Hex HMAC-SHA256 (what clients send as ``X-QV-Signature``) of
    ``"{timestamp}.{METHOD}.{path}.{raw body}"`` with ``secret``: ``timestamp`` unix seconds,
    ``method`` any case (upper-cased here), ``path`` with its query string as sent (text; non-ASCII
    characters are UTF-8 encoded), ``body`` the raw bytes. The server's check and the clients
    (the demo market, the tests' platform) use this one function."""
    message = b".".join(
        (str(timestamp).encode("ascii"), method.upper().encode("ascii"), path.encode("utf-8"), body)
    )
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, method: str, path: str, body: bytes = b"", *, timestamp: int | None = None) -> dict[str, str]:
    """The two auth headers of one request, signed now (or at ``timestamp``, unix seconds)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, method, path, body)}


def _matches(secret: str, timestamp: str, method: str, path: str, body: bytes, signature: str) -> bool:
    if not secret:
        return False
    expected = sign(secret, timestamp, method, path, body).encode("ascii")
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
    signed = (timestamp, request.method or "", request.get_full_path(), request.body)
    if _matches(settings.QV_ADMIN_SECRET, *signed, signature):
        return ADMIN
    if _matches(settings.QV_INTAKE_SECRET, *signed, signature):
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
        f"Signature v2: hex HMAC-SHA256 of '{{timestamp}}.{{METHOD}}.{{path}}.{{raw body}}' with the "
        f"platform (or admin) secret; METHOD upper-case, path with its query string exactly as sent "
        f"(e.g. /api/v1/ious?status=open). The timestamp (unix seconds) goes in {TIMESTAMP_HEADER}; "
        f"more than 300 s (QV_INTAKE_MAX_SKEW_SECONDS) away from now, or a signature made for another method, path, query or "
        f"body: 401."
    )

    def __call__(self, request: HttpRequest) -> str:
        return verify(request, admin_only=False)


class AdminAuth(AuthBase):
    """Ninja auth for admin routes: the admin secret only (the platform secret gets 403)."""

    openapi_type = "apiKey"
    openapi_in = "header"
    openapi_name = SIGNATURE_HEADER
    openapi_description = (
        f"Signature v2 (as for the platform routes) with the admin secret only; the platform "
        f"secret gets 403. Hex HMAC-SHA256 of '{{timestamp}}.{{METHOD}}.{{path}}.{{raw body}}'; "
        f"the timestamp (unix seconds) goes in {TIMESTAMP_HEADER}."
    )

    def __call__(self, request: HttpRequest) -> str:
        return verify(request, admin_only=True)
