"""The withdrawal guard: ``GET /subscriptions/{id}/guard`` answers from the ledger and changes
nothing; ``POST`` to the same path retries the open IOUs first (on the local node), then answers.
IOUs within their TTL block, expired ones stay owed without blocking; delinquency is reported."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connections

from profitshare.api.routes import common
from profitshare.models import AuditEvent, IouStatus, Subscription
from profitshare.services.locks import advisory_key
from tests.api.conftest import db_state, make_iou

pytestmark = pytest.mark.django_db


def test_nothing_owed_allows_everything_and_writes_nothing(api, subscription):
    before = db_state()
    response = api.get("/api/v1/subscriptions/sub-1/guard")
    assert response.status_code == 200
    assert response.json() == {"can_withdraw": True, "can_delete": True, "owed": 0, "delinquent": False}
    assert db_state() == before


def test_a_get_with_an_open_iou_answers_from_the_ledger_and_changes_nothing(api, subscription, chain):
    """A GET moves no money and writes nothing, however often a client or a replay repeats it,
    even when the retry would pay (the agent has the SOL and the USDC)."""
    agent = subscription["agent_wallet"]
    chain.rpc("requestAirdrop", agent, 100_000_000)
    chain.rpc("localnet_fundUsdc", agent, 4_000_000)
    iou = make_iou(api, "close-1", withdrawn=4_000_000)
    before = db_state()
    for _ in range(3):
        response = api.get("/api/v1/subscriptions/sub-1/guard")
        assert response.json() == {"can_withdraw": False, "can_delete": False, "owed": 4_000_000, "delinquent": False}
    assert db_state() == before
    iou.refresh_from_db()
    assert (iou.status, iou.attempts) == (IouStatus.OPEN, 0)


def test_an_open_iou_is_retried_then_blocks(api, subscription, chain):
    iou = make_iou(api, "close-1")
    response = api.post("/api/v1/subscriptions/sub-1/guard")
    assert response.status_code == 200
    assert response.json() == {"can_withdraw": False, "can_delete": False, "owed": 4_000_000, "delinquent": False}
    iou.refresh_from_db()
    assert (iou.status, iou.reason, iou.attempts) == ("open", "insufficient_sol", 1)
    claim = AuditEvent.objects.get(entity="iou", entity_id=str(iou.pk), to_status="processing")
    assert claim.actor == "api:guard"


def test_the_retry_pays_and_then_the_exit_is_allowed(api, subscription, chain):
    agent = subscription["agent_wallet"]
    chain.rpc("requestAirdrop", agent, 100_000_000)
    chain.rpc("localnet_fundUsdc", agent, 4_000_000)
    iou = make_iou(api, "close-1", withdrawn=4_000_000)
    response = api.post("/api/v1/subscriptions/sub-1/guard")
    assert response.json() == {"can_withdraw": True, "can_delete": True, "owed": 0, "delinquent": False}
    iou.refresh_from_db()
    assert (iou.status, iou.paid_amount) == ("paid", 4_000_000)


def test_an_expired_iou_stays_owed_but_does_not_block(api, subscription):
    make_iou(api, "close-1", status=IouStatus.EXPIRED, expires_in=-timedelta(hours=1))
    before = db_state()
    response = api.post("/api/v1/subscriptions/sub-1/guard")
    assert response.json() == {"can_withdraw": True, "can_delete": True, "owed": 4_000_000, "delinquent": False}
    assert db_state() == before  # only open IOUs are retried


def test_delinquency_is_reported(api, subscription):
    Subscription.objects.filter(subscription_id="sub-1").update(status="delinquent")
    response = api.get("/api/v1/subscriptions/sub-1/guard")
    assert response.json()["delinquent"] is True


def test_a_busy_agent_wallet_leaves_the_iou_blocking(api, subscription, chain, monkeypatch):
    monkeypatch.setattr(common, "LOCK_TIMEOUT_SECONDS", 0.2)
    iou = make_iou(api, "close-1")
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [advisory_key(subscription["agent_wallet"])])
        response = api.post("/api/v1/subscriptions/sub-1/guard")
    finally:
        other.close()
    assert response.status_code == 200
    assert response.json()["can_withdraw"] is False
    iou.refresh_from_db()
    assert (iou.status, iou.attempts) == (IouStatus.OPEN, 0)  # the lock comes first: nothing changed


def test_unknown_subscription_is_404(api):
    for call in (api.get, api.post):
        response = call("/api/v1/subscriptions/nobody/guard")
        assert response.status_code == 404
        assert response.json() == {"detail": "subscription 'nobody' not found"}
