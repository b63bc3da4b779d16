"""Fixtures of the API tests: signed requests (HMAC computed here, independently of the app),
a snapshot of every table the API can touch, and bots / subscriptions / IOUs built through the
API itself (IOUs: the ORM, as the engine would leave them)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone
from django_q.models import OrmQ
from solders.keypair import Keypair

from profitshare.models import (
    IOU,
    Distribution,
    DistributionStatus,
    IouReason,
    IouStatus,
    TradeClose,
)
from tests.world import rewrite_ledger

PLATFORM_SECRET = "platform-test-secret"
ADMIN_SECRET = "admin-test-secret"
CLOSED_AT = "2026-01-02T03:04:05+00:00"


def hmac_hex(secret: str, timestamp: int | str, method: str, path: str, body: bytes) -> str:
    """Signature v2, as the trading platform computes it: hex HMAC-SHA256 of
    ``"{timestamp}.{METHOD}.{path with query}.{raw body}"``."""
    message = f"{timestamp}.{method.upper()}.{path}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def auth_headers(secret: str, timestamp: int | str, method: str, path: str, body: bytes = b"") -> dict:
    """``X-QV-Timestamp`` and ``X-QV-Signature`` of one request."""
    return {"X-QV-Timestamp": str(timestamp), "X-QV-Signature": hmac_hex(secret, timestamp, method, path, body)}


def new_address() -> str:
    """A fresh valid base58 Solana address."""
    return str(Keypair().pubkey())


class SignedClient:
    """Django's test client with signed requests. ``secret=None`` sends no auth headers;
    ``headers`` replaces them; ``raw`` sends bytes as the body (instead of ``json.dumps``)."""

    def __init__(self, client) -> None:
        self.client = client

    def _headers(self, secret, timestamp, method: str, path: str, body: bytes) -> dict:
        if secret is None:
            return {}
        return auth_headers(secret, int(time.time()) if timestamp is None else timestamp, method, path, body)

    def post(self, path, body=None, *, secret=PLATFORM_SECRET, timestamp=None, headers=None, raw=None):
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        hdrs = self._headers(secret, timestamp, "POST", path, data) if headers is None else headers
        return self.client.post(path, data=data, content_type="application/json", headers=hdrs)

    def get(self, path, *, secret=PLATFORM_SECRET, timestamp=None, headers=None):
        hdrs = self._headers(secret, timestamp, "GET", path, b"") if headers is None else headers
        return self.client.get(path, headers=hdrs)


def db_state() -> dict:
    """Every row of every profitshare table and of the task queue, to prove that a refused
    request wrote (inserted, updated, deleted) nothing."""
    models = list(apps.get_app_config("profitshare").get_models()) + [OrmQ]
    state = {}
    for model in models:
        rows = []
        for row in model.objects.order_by("pk").values():
            rows.append({k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()})
        state[model._meta.label] = rows
    return state


def row_counts() -> dict:
    """Row count of every table ``db_state`` covers."""
    return {label: len(rows) for label, rows in db_state().items()}


@pytest.fixture(autouse=True)
def _api_secrets(settings):
    settings.QV_INTAKE_SECRET = PLATFORM_SECRET
    settings.QV_ADMIN_SECRET = ADMIN_SECRET
    settings.QV_INTAKE_MAX_SKEW_SECONDS = 300


@pytest.fixture
def api(client) -> SignedClient:
    return SignedClient(client)


@pytest.fixture
def chain(localnet, settings):
    """The local node, with ``get_gateway()`` pointed at it."""
    settings.QV_RPC_URLS = [localnet.url]
    return localnet


def bot_body(**overrides) -> dict:
    body = {
        "bot_id": "bot-1",
        "creator_wallet": new_address(),
        "name": "Momentum",
        "profit_share_bps": 1_000,
        "policy": "per_trade",
    }
    body.update(overrides)
    return body


@pytest.fixture
def bot(api) -> dict:
    """A bot published through the API at 10 % (the response body)."""
    response = api.post("/api/v1/bots", bot_body())
    assert response.status_code == 201, response.content
    return response.json()


def subscription_body(bot_id="bot-1", **overrides) -> dict:
    body = {
        "subscription_id": "sub-1",
        "bot_id": bot_id,
        "subscriber_wallet": new_address(),
        "drift_subaccount_id": 0,
    }
    body.update(overrides)
    return body


@pytest.fixture
def subscription(api, bot) -> dict:
    """A subscription to ``bot`` created through the API (the response body)."""
    response = api.post("/api/v1/subscriptions", subscription_body(bot["bot_id"]))
    assert response.status_code == 201, response.content
    return response.json()


def close_body(close_id="close-1", subscription_id="sub-1", **overrides) -> dict:
    body = {
        "close_id": close_id,
        "subscription_id": subscription_id,
        "market_index": 0,
        "realized_pnl": 40_000_000,
        "kind": "full",
        "closed_at": CLOSED_AT,
    }
    body.update(overrides)
    return body


def make_iou(
    api,
    close_id: str,
    *,
    subscription_id="sub-1",
    pnl=40_000_000,
    paid=0,
    withdrawn=0,
    status=IouStatus.OPEN,
    expires_in=timedelta(days=7),
) -> IOU:
    """Report a close through the API, then leave its distribution as the engine does after a
    failed payout: settled on Drift, ``paid`` paid, the rest owed in one IOU (status
    ``status``; ``withdrawn`` base units already in the agent's token account)."""
    response = api.post("/api/v1/trade-closes", close_body(close_id, subscription_id, realized_pnl=pnl))
    assert response.status_code == 202, response.content
    dist = Distribution.objects.get(close__close_id=close_id)
    owed = dist.share - paid
    rewrite_ledger(
        dist,
        paid=paid,
        owed=owed,
        withdrawn=withdrawn,
        settled=True,
        attempts=1,
        status=DistributionStatus.PARTIALLY_PAID if paid else DistributionStatus.OWED,
    )
    now = timezone.now()
    return IOU.objects.create(
        distribution=dist,
        subscription=dist.subscription,
        creator=dist.creator,
        amount=dist.share,
        paid_amount=paid,
        reason=IouReason.INSUFFICIENT_SOL,
        status=status,
        next_retry_at=now + timedelta(minutes=1),
        expires_at=now + expires_in,
        void_reason="voided in a test" if status == IouStatus.VOIDED else "",
    )


def close_of(close_id: str) -> TradeClose:
    return TradeClose.objects.get(close_id=close_id)
