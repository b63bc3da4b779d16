"""GET /ious (filters, keyset pages), POST /ious/{id}/retry and /void (admin): real retries on
the local node, refusals (404 / 409 / 422) that write nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from profitshare.api.routes import common
from profitshare.models import IOU, AuditEvent, Distribution, IouStatus, PayoutAttempt
from profitshare.services.locks import advisory_key
from tests.api.conftest import ADMIN_SECRET, db_state, make_iou, subscription_body

pytestmark = pytest.mark.django_db


def admin_post(api, path, body=None):
    return api.post(path, body, secret=ADMIN_SECRET)


# --- listing ---------------------------------------------------------------------------------------
def test_list_shows_remaining_amounts_and_filters(api, subscription):
    assert api.post("/api/v1/subscriptions", subscription_body(subscription_id="sub-2")).status_code == 201
    a = make_iou(api, "close-a", paid=1_000_000)
    b = make_iou(api, "close-b", subscription_id="sub-2", status=IouStatus.EXPIRED)
    c = make_iou(api, "close-c", status=IouStatus.VOIDED)
    response = api.get("/api/v1/ious")
    assert response.status_code == 200
    data = response.json()
    assert data["next"] is None
    first = data["items"][0]
    assert first == {
        "iou_id": a.pk, "close_id": "close-a", "subscription_id": "sub-1", "amount": 3_000_000,
        "reason": "insufficient_sol", "status": "open", "attempts": 0,
        "created_at": first["created_at"],
    }
    assert first["created_at"].startswith(a.created_at.date().isoformat())
    assert [i["iou_id"] for i in data["items"]] == [a.pk, b.pk, c.pk]
    assert [i["amount"] for i in data["items"]] == [3_000_000, 4_000_000, 4_000_000]

    by_status = api.get("/api/v1/ious?status=expired").json()["items"]
    assert [i["iou_id"] for i in by_status] == [b.pk]
    by_sub = api.get("/api/v1/ious?subscription_id=sub-1").json()["items"]
    assert [i["iou_id"] for i in by_sub] == [a.pk, c.pk]
    both = api.get("/api/v1/ious?subscription_id=sub-1&status=voided").json()["items"]
    assert [i["iou_id"] for i in both] == [c.pk]
    assert api.get("/api/v1/ious?subscription_id=nobody").json() == {"items": [], "next": None}


def test_keyset_pages_walk_every_iou_once(api, subscription):
    ids = [make_iou(api, f"close-{n}").pk for n in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        query = "/api/v1/ious?limit=2" + (f"&cursor={cursor}" if cursor is not None else "")
        page = api.get(query).json()
        pages += 1
        seen += [i["iou_id"] for i in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3
    assert api.get(f"/api/v1/ious?cursor={ids[-1]}").json() == {"items": [], "next": None}


def test_a_full_last_page_has_no_next(api, subscription):
    ids = [make_iou(api, f"close-{n}").pk for n in range(2)]
    page = api.get("/api/v1/ious?limit=2").json()
    assert ([i["iou_id"] for i in page["items"]], page["next"]) == (ids, None)


def test_default_page_size_is_50(api, subscription):
    for n in range(51):
        make_iou(api, f"close-{n}")
    page = api.get("/api/v1/ious").json()
    assert len(page["items"]) == 50
    assert page["next"] == page["items"][-1]["iou_id"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=201", "limit"), ("limit=0", "limit"), ("limit=ten", "limit"), ("status=owing", "status"),
     ("cursor=abc", "cursor"), ("cursor=-1", "cursor")],
)
def test_bad_query_is_422_naming_the_parameter(api, query, field):
    response = api.get(f"/api/v1/ious?{query}")
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["detail"]] == [field]


def test_limit_200_is_allowed(api):
    assert api.get("/api/v1/ious?limit=200").status_code == 200


# --- void ------------------------------------------------------------------------------------------
def test_void_forgives_the_rest_and_records_who_and_why(api, subscription):
    iou = make_iou(api, "close-1", paid=1_000_000)
    response = admin_post(api, f"/api/v1/ious/{iou.pk}/void", {"reason": "creator waived it"})
    assert response.status_code == 200
    assert response.json() == {"iou_id": iou.pk, "status": "voided", "remaining": 3_000_000}
    iou.refresh_from_db()
    dist = Distribution.objects.get(pk=iou.distribution_id)
    assert (iou.status, iou.void_reason, iou.voided_by) == ("voided", "creator waived it", "api:admin")
    assert (dist.paid, dist.owed, dist.voided, dist.status) == (1_000_000, 0, 3_000_000, "paid")
    event = AuditEvent.objects.get(entity="iou", entity_id=str(iou.pk), to_status="voided")
    assert (event.actor, event.reason) == ("api:admin", "creator waived it")


def test_a_close_whose_whole_debt_was_voided_reads_voided(api, subscription):
    iou = make_iou(api, "close-1")
    assert admin_post(api, f"/api/v1/ious/{iou.pk}/void", {"reason": "creator waived it"}).status_code == 200
    body = api.get("/api/v1/trade-closes/close-1").json()
    assert (body["status"], body["paid"], body["owed"]) == ("voided", 0, 0)


@pytest.mark.parametrize("body", [{"reason": ""}, {"reason": "   "}, {}, {"reason": 7}, {"reason": None}])
def test_void_without_a_reason_is_422_and_writes_nothing(api, subscription, body):
    iou = make_iou(api, "close-1")
    before = db_state()
    response = admin_post(api, f"/api/v1/ious/{iou.pk}/void", body)
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["detail"]] == ["reason"]
    assert db_state() == before


def test_void_unknown_iou_is_404(api, subscription):
    before = db_state()
    response = admin_post(api, "/api/v1/ious/999999/void", {"reason": "x"})
    assert response.status_code == 404
    assert response.json() == {"detail": "iou '999999' not found"}
    assert db_state() == before


@pytest.mark.parametrize("status", [IouStatus.VOIDED, IouStatus.PAID, IouStatus.PROCESSING])
def test_void_of_a_settled_or_busy_iou_is_409_and_writes_nothing(api, subscription, status):
    iou = make_iou(api, "close-1", status=status)
    before = db_state()
    response = admin_post(api, f"/api/v1/ious/{iou.pk}/void", {"reason": "again"})
    assert response.status_code == 409
    assert "only open or expired" in response.json()["detail"]
    assert db_state() == before


def test_bad_iou_id_in_the_path_is_422(api):
    assert admin_post(api, "/api/v1/ious/abc/void", {"reason": "x"}).status_code == 422
    response = admin_post(api, "/api/v1/ious/0/retry")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "iou_id"


# --- retry -----------------------------------------------------------------------------------------
def test_retry_without_sol_leaves_the_iou_open_for_insufficient_sol(api, subscription, chain):
    iou = make_iou(api, "close-1")
    response = admin_post(api, f"/api/v1/ious/{iou.pk}/retry")
    assert response.status_code == 200, response.content
    assert response.json() == {"iou_id": iou.pk, "status": "open", "remaining": 4_000_000}
    iou.refresh_from_db()
    assert (iou.status, iou.reason, iou.attempts, iou.claimed_at) == ("open", "insufficient_sol", 1, None)
    assert iou.last_error.endswith("lamports, has 0")  # the pre-flight said why
    actors = set(AuditEvent.objects.filter(entity="iou", entity_id=str(iou.pk)).values_list("actor", flat=True))
    assert actors == {"api:admin"}
    assert not PayoutAttempt.objects.exists()


def test_retry_with_funds_pays_the_creator_on_chain(api, subscription, chain):
    agent = subscription["agent_wallet"]
    chain.rpc("requestAirdrop", agent, 100_000_000)
    chain.rpc("localnet_fundUsdc", agent, 4_000_000)  # withdrawn from Drift by an earlier run
    iou = make_iou(api, "close-1", withdrawn=4_000_000)
    response = admin_post(api, f"/api/v1/ious/{iou.pk}/retry")
    assert response.status_code == 200, response.content
    assert response.json() == {"iou_id": iou.pk, "status": "paid", "remaining": 0}
    attempt = PayoutAttempt.objects.get()
    assert (attempt.iou_id, attempt.status, attempt.amount) == (iou.pk, "landed", 4_000_000)
    close = api.get("/api/v1/trade-closes/close-1").json()
    assert (close["status"], close["paid"], close["owed"], close["signatures"]) == (
        "paid", 4_000_000, 0, [attempt.signature],
    )
    balance = chain.rpc("getTokenAccountBalance", attempt.destination_ata)["value"]["amount"]
    assert int(balance) == 4_000_000


def test_retry_unknown_iou_is_404(api):
    before = db_state()
    response = admin_post(api, "/api/v1/ious/424242/retry")
    assert response.status_code == 404
    assert response.json() == {"detail": "iou '424242' not found"}
    assert db_state() == before


@pytest.mark.parametrize("status", [IouStatus.PAID, IouStatus.VOIDED, IouStatus.PROCESSING])
def test_retry_of_a_non_retryable_iou_is_409_and_writes_nothing(api, subscription, status):
    iou = make_iou(api, "close-1", status=status)
    before = db_state()
    response = admin_post(api, f"/api/v1/ious/{iou.pk}/retry")
    assert response.status_code == 409
    assert "not retryable" in response.json()["detail"]
    assert db_state() == before


def test_an_expired_iou_can_be_retried(api, subscription, chain):
    iou = make_iou(api, "close-1", status=IouStatus.EXPIRED, expires_in=-timedelta(hours=1))
    response = admin_post(api, f"/api/v1/ious/{iou.pk}/retry")
    assert response.status_code == 200
    assert response.json()["status"] == "expired"  # still owed, no longer blocking
    iou.refresh_from_db()
    assert (iou.attempts, iou.reason) == (1, "insufficient_sol")
    assert iou.next_retry_at > timezone.now()


def test_retry_while_the_agent_wallet_pays_elsewhere_is_409_payout_in_progress(api, subscription, chain, monkeypatch):
    monkeypatch.setattr(common, "LOCK_TIMEOUT_SECONDS", 0.2)
    iou = make_iou(api, "close-1")
    other = connections.create_connection("default")  # another worker's session
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [advisory_key(subscription["agent_wallet"])])
        response = admin_post(api, f"/api/v1/ious/{iou.pk}/retry")
    finally:
        other.close()
    assert response.status_code == 409
    assert response.json() == {"detail": "payout in progress"}
    iou.refresh_from_db()
    assert (iou.status, iou.attempts) == (IouStatus.OPEN, 0)  # a 409 writes nothing: lock before claim
    assert not PayoutAttempt.objects.exists()
    assert IOU.objects.count() == 1
