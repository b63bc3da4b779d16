"""Schemathesis against the intake API (stateless: examples, coverage and fuzzing phases; every
check, ``positive_data_acceptance`` and ``negative_data_rejection`` included): the OpenAPI schema
states what the server enforces, and no generated request gets a 500.

Requests are signed as the trading platform signs them. Schemathesis's auth hook marks a request
as signed (a placeholder ``X-QV-Signature``, the header the security scheme declares); a WSGI
layer in front of Django, the platform's edge, adds ``X-QV-Timestamp`` and replaces the
placeholder with the signature v2 of the exact method, path, query and body bytes Django receives
(admin routes with the admin secret). Requests the ``ignored_auth``
check sends without auth stay unsigned and must be refused. Formats the schema names that
JSON Schema cannot check are given strategies: ``solana-address`` (32 random bytes, base58) and
``date-time`` (1970 up to now: the server refuses more than a day ahead).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import time
from datetime import datetime

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from solders.pubkey import Pubkey

from profitshare.models import Referral
from tests.api.conftest import ADMIN_SECRET, PLATFORM_SECRET

PLACEHOLDER = "sign-at-the-edge"
ADMIN_ROUTE = re.compile(r"^/api/v1/ious/[^/]+/(retry|void)$")
MAX_EXAMPLES = 100  # per operation and phase: about a minute for the whole API on 2 cores

CONFIG = f"""
[generation]
max-examples = {MAX_EXAMPLES}
mode = "all"

[phases.stateful]
enabled = false
"""

schemathesis.openapi.format(
    "solana-address",
    st.binary(min_size=32, max_size=32).filter(any).map(lambda key: str(Pubkey.from_bytes(key))),
)
schemathesis.openapi.format(
    "date-time",
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2026, 1, 1)).map(
        lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
)


class SigningEdge:
    """WSGI: sign requests that carry the placeholder, as the platform would (signature v2 over
    what Django receives), then hand them to Django."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_QV_SIGNATURE") == PLACEHOLDER:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            request = WSGIRequest({**environ, "wsgi.input": io.BytesIO(body)})
            secret = ADMIN_SECRET if ADMIN_ROUTE.match(request.path) else PLATFORM_SECRET
            timestamp = environ["HTTP_X_QV_TIMESTAMP"] = str(int(time.time()))
            message = f"{timestamp}.{request.method}.{request.get_full_path()}.".encode() + body
            environ["HTTP_X_QV_SIGNATURE"] = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        return self.app(environ, start_response)


@pytest.fixture
def api_schema(db):
    # As Django's test client does: the request cycle must not close the test's connection (it
    # holds the test transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", SigningEdge(WSGIHandler()), config=SchemathesisConfig.from_str(CONFIG)
    )

    @schema.auth()
    class PlatformSignature:
        """Marks the request signed; ``SigningEdge`` computes the signature."""

        def get(self, case, context):
            return PLACEHOLDER

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "X-QV-Signature": data}

    yield schema
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


def is_self_referral(body) -> bool:
    """A ``POST /referrals`` body whose two wallets are the same value."""
    return isinstance(body, dict) and "wallet" in body and body.get("wallet") == body.get("referrer_wallet")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_schema(case):
    if case.method == "POST" and case.path.endswith("/referrals"):
        # Referral links are state, and two refusals of schema-valid input are the server's right
        # (422, tests/api/test_referrals.py): a link closing a cycle with one recorded by an
        # earlier example, and a self-referral (JSON Schema cannot say "differs from wallet").
        # Each example starts with no links, and self-referrals are not sent.
        Referral.objects.all().delete()
        assume(not is_self_referral(case.body))
    response = case.call_and_validate()
    signed = (case.headers or {}).get("X-QV-Signature") == PLACEHOLDER
    assert not (signed and response.status_code == 401), response.text  # the signing edge works
    assert response.status_code < 500, response.text


def test_the_edge_signs_like_the_platform():
    """The fuzz test's signer computes what the app's own signing function does."""
    from profitshare.api.auth import sign

    now = int(time.time())
    message = f"{now}.GET./api/v1/ious?status=open.".encode()
    assert hmac.new(b"k", message, hashlib.sha256).hexdigest() == sign("k", now, "GET", "/api/v1/ious?status=open")
