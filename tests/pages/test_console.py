"""The admin console on real IOUs: staff only, CSRF-protected POSTs, debts with totals, filters
and sorting, retry now that settles (polled row), void with a reason and confirmation, bulk
retry, alerts, delinquency, engine health, detail pages with the audit trail."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from profitshare.models import IOU, Alert, AuditEvent, IouStatus, PayoutAttempt, Subscription
from profitshare.models.reconciliation import ReconciliationReport
from profitshare.services.audit import record_event
from profitshare.tasks import retry_claimed_iou_task
from tests.pages.conftest import pay, sign_in_as
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_console_is_for_staff_only(client, earnings):
    urls = [
        "/console/", f"/console/ious/{earnings.iou.pk}/", f"/console/distributions/{earnings.iou.distribution_id}/",
        "/console/alerts/", "/console/delinquent/", "/console/health/", f"/console/ious/{earnings.iou.pk}/row/",
    ]
    sign_in_as(client, earnings.creator_address)  # a wallet session is not staff
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
    assert client.post(f"/console/ious/{earnings.iou.pk}/void/", {"reason": "x", "confirm": "yes"}).status_code == 302
    get_user_model().objects.create_user("plain", password="pw")
    client.login(username="plain", password="pw")
    assert client.get("/console/").status_code == 302
    earnings.iou.refresh_from_db()
    assert earnings.iou.status == IouStatus.OPEN


def test_posts_need_csrf(earnings):
    get_user_model().objects.create_user("ops2", password="pw", is_staff=True)
    strict = Client(enforce_csrf_checks=True)
    strict.login(username="ops2", password="pw")
    assert strict.post(f"/console/ious/{earnings.iou.pk}/retry/").status_code == 403
    assert strict.post(f"/console/ious/{earnings.iou.pk}/void/", {"reason": "r", "confirm": "yes"}).status_code == 403
    earnings.iou.refresh_from_db()
    assert earnings.iou.status == IouStatus.OPEN


def test_debts_list_totals_filters_and_sorting(staff_client, earnings, localnet, gateway):
    second = make_world(localnet, lamports=1_000_000)
    pay(second, gateway, 90_000_000)  # a 9 USDC IOU for another creator
    response = staff_client.get("/console/")
    assert response.status_code == 200
    totals = response.context["totals"]
    assert (totals["count"], totals["remaining"]) == (2, 12_000_000)
    assert totals["by_reason"] == [
        {"reason": "insufficient_sol", "label": "Agent wallet lacks SOL for fees and rent", "count": 2, "remaining": 12_000_000}
    ]
    html = response.content.decode()
    assert f'id="iou-{earnings.iou.pk}"' in html and "insufficient_sol" in html and "3.000000" in html
    filtered = staff_client.get(f"/console/?creator={earnings.creator_address}")
    assert [r.record.pk for r in filtered.context["table"].paginated_rows] == [earnings.iou.pk]
    by_amount = staff_client.get("/console/?sort=-remaining_owed").context["table"]
    assert [r.record.remaining for r in by_amount.paginated_rows] == [9_000_000, 3_000_000]
    fragment = staff_client.get("/console/?sort=remaining_owed", HTTP_HX_TARGET="debts", **HTMX)
    assert b"<html" not in fragment.content and b'id="debts"' in fragment.content


def test_retry_now_polls_the_row_until_it_settles(staff_client, earnings, localnet):
    iou = earnings.iou
    localnet.rpc("requestAirdrop", earnings.iou_world.subscription.agent_wallet.pubkey, 100_000_000)
    row = staff_client.post(f"/console/ious/{iou.pk}/retry/", **HTMX)
    assert row.status_code == 200
    html = row.content.decode()
    assert html.lstrip().startswith("<tr") and "Retry queued." in html
    assert f'hx-get="/console/ious/{iou.pk}/row/"' in html and 'hx-trigger="every 1s"' in html
    assert IOU.objects.get(pk=iou.pk).status == IouStatus.PROCESSING
    again = staff_client.post(f"/console/ious/{iou.pk}/retry/", **HTMX)
    assert "Not retryable now" in again.content.decode()
    assert retry_claimed_iou_task(iou.pk, "admin:ops") == IouStatus.PAID  # what the cluster runs
    settled = staff_client.get(f"/console/ious/{iou.pk}/row/", **HTMX).content.decode()
    assert 'data-status="paid"' in settled and "hx-trigger" not in settled
    assert earnings.iou_world.creator_usdc() == 7_750_000 + 3_000_000
    assert AuditEvent.objects.filter(entity="iou", entity_id=str(iou.pk), actor="admin:ops").exists()


def test_void_needs_a_reason_and_confirmation_and_is_audited(staff_client, earnings):
    iou = earnings.iou
    missing = staff_client.post(f"/console/ious/{iou.pk}/void/", {"reason": "  ", "confirm": "yes"}, **HTMX)
    assert missing.status_code == 422 and "needs a reason" in missing.content.decode()
    unconfirmed = staff_client.post(f"/console/ious/{iou.pk}/void/", {"reason": "creator agreed"})
    assert unconfirmed.status_code == 200 and "Void this debt" in unconfirmed.content.decode()
    assert IOU.objects.get(pk=iou.pk).status == IouStatus.OPEN
    done = staff_client.post(f"/console/ious/{iou.pk}/void/", {"reason": "creator agreed", "confirm": "yes"}, **HTMX)
    assert done.status_code == 200 and "Voided." in done.content.decode() and 'data-status="voided"' in done.content.decode()
    iou.refresh_from_db()
    assert (iou.status, iou.void_reason, iou.voided_by) == (IouStatus.VOIDED, "creator agreed", "admin:ops")
    event = AuditEvent.objects.filter(entity="iou", entity_id=str(iou.pk), to_status="voided").get()
    assert (event.actor, event.reason) == ("admin:ops", "creator agreed")
    assert Alert.objects.filter(kind="iou_voided").exists()
    twice = staff_client.post(f"/console/ious/{iou.pk}/void/", {"reason": "again", "confirm": "yes"}, **HTMX)
    assert twice.status_code == 409 and "only open or expired" in twice.content.decode()
    detail = staff_client.get(f"/console/ious/{iou.pk}/").content.decode()
    assert "creator agreed" in detail and "admin:ops" in detail


def test_void_without_javascript_goes_through_the_confirmation_page(staff_client, earnings):
    iou = earnings.iou
    page = staff_client.get(f"/console/ious/{iou.pk}/void/")
    assert page.status_code == 200 and 'name="confirm" value="yes"' in page.content.decode()
    done = staff_client.post(f"/console/ious/{iou.pk}/void/", {"reason": "duplicate", "confirm": "yes"})
    assert done.status_code == 302 and done["Location"] == f"/console/ious/{iou.pk}/"
    assert IOU.objects.get(pk=iou.pk).status == IouStatus.VOIDED


def test_bulk_retry_claims_the_filtered_set(staff_client, earnings, localnet, gateway):
    """Without JavaScript: a redirect back to the filtered page, the outcome as a message."""
    other = make_world(localnet, lamports=1_000_000)
    pay(other, gateway, 50_000_000)
    response = staff_client.post("/console/ious/retry/", {"creator": earnings.creator_address})
    assert response.status_code == 302 and "creator=" in response["Location"]
    statuses = dict(IOU.objects.values_list("creator__address", "status"))
    assert statuses[earnings.creator_address] == IouStatus.PROCESSING
    assert statuses[other.subscription.bot.creator.address] == IouStatus.OPEN
    follow = staff_client.get(response["Location"])
    assert "Bulk retry: 1 queued, 0 skipped." in follow.content.decode()


def test_bulk_retry_reports_in_place_under_htmx(staff_client, earnings, localnet, gateway):
    """Under htmx the debts section comes back as the page showed it (filters and sort from
    HX-Current-URL), the outcome on top and the queued row polling; nothing redirects."""
    other = make_world(localnet, lamports=1_000_000)
    other_iou = IOU.objects.get(distribution=pay(other, gateway, 50_000_000))
    page = f"http://testserver/console/?creator={earnings.creator_address}&sort=-remaining_owed"
    response = staff_client.post(
        "/console/ious/retry/", {"creator": earnings.creator_address}, HTTP_HX_CURRENT_URL=page,
        HTTP_HX_TARGET="debts", **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="debts">') and "<html" not in html
    assert 'id="bulk-result"' in html and "Bulk retry: 1 queued, 0 skipped." in html
    assert f'href="#iou-{earnings.iou.pk}"' in html
    rows = response.context["table"].paginated_rows
    assert [r.record.pk for r in rows] == [earnings.iou.pk]  # still filtered to that creator
    assert f'id="iou-{earnings.iou.pk}" data-status="processing"' in html and 'hx-trigger="every 1s"' in html
    assert f'id="iou-{other_iou.pk}"' not in html
    assert "creator=" in html and "sort=remaining_owed" in html  # header links keep the page's query
    assert IOU.objects.get(pk=earnings.iou.pk).status == IouStatus.PROCESSING
    assert IOU.objects.get(pk=other_iou.pk).status == IouStatus.OPEN
    again = staff_client.post(
        "/console/ious/retry/", {"creator": earnings.creator_address}, HTTP_HX_CURRENT_URL=page, **HTMX
    )
    assert "Bulk retry: 0 queued, 0 skipped." in again.content.decode()  # processing is not retryable


def test_detail_pages_show_signatures_and_the_audit_trail(staff_client, earnings):
    paid = earnings.paid[0]
    attempt = PayoutAttempt.objects.get(distribution=paid)
    html = staff_client.get(f"/console/distributions/{paid.pk}/").content.decode()
    assert attempt.signature in html and "payout landed" in html and "No IOU" in html
    trail = staff_client.get(f"/console/distributions/{paid.pk}/").context["trail"]
    assert {e.entity for e in trail} >= {"distribution", "payout_attempt", "close"}
    iou_page = staff_client.get(f"/console/ious/{earnings.iou.pk}/")
    assert iou_page.status_code == 200
    assert "insufficient_sol" in iou_page.content.decode()
    assert any(e.entity == "iou" and e.to_status == "open" for e in iou_page.context["trail"])
    assert staff_client.get("/console/ious/999999/").status_code == 404
    assert staff_client.get("/console/distributions/999999/").status_code == 404


def test_alerts_are_acknowledged_in_place(staff_client, earnings):
    alert = Alert.objects.filter(kind="iou_created").first()
    assert alert is not None
    assert alert.subject in staff_client.get("/console/alerts/").content.decode()
    row = staff_client.post(f"/console/alerts/{alert.pk}/ack/", **HTMX)
    assert row.status_code == 200 and "admin:ops" in row.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == "admin:ops" and alert.acknowledged_at
    assert AuditEvent.objects.filter(entity="alert", entity_id=str(alert.pk), to_status="acknowledged").exists()
    assert alert.subject not in staff_client.get("/console/alerts/").content.decode()
    assert alert.subject in staff_client.get("/console/alerts/?all=1").content.decode()
    again = staff_client.post(f"/console/alerts/{alert.pk}/ack/", **HTMX)
    assert "already acknowledged" in again.content.decode()


def test_delinquent_subscriptions_show_what_they_owe_and_moved_out(staff_client, earnings):
    sub = earnings.iou_world.subscription
    Subscription.objects.filter(pk=sub.pk).update(status="delinquent")
    record_event(  # what the delinquency watch records when it marks a subscription
        "subscription", sub.subscription_id, actor="delinquency-watch", from_status="active",
        to_status="delinquent", reason="funds moved out on-chain while owing", amount=5_000_000, signature="5" * 87,
        lamports=90_000_000,
    )
    response = staff_client.get("/console/delinquent/")
    rows = response.context["subscriptions"]
    assert [(r["subscription_id"], r["owed"], r["moved_out"]) for r in rows] == [
        (sub.subscription_id, 3_000_000, 5_000_000)
    ]
    html = response.content.decode()
    assert "3.000000" in html and "5.000000" in html and "5" * 87 in html
    assert "0.090000000" in html  # SOL drained, shown in SOL


def test_engine_health(staff_client, earnings):
    from django.core.management import call_command

    call_command("setup_schedules")
    response = staff_client.get("/console/health/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "qv-iou-retry-sweep" in html and "qv-stale-resolver" in html
    assert response.context["broker"] == "ORM"
    assert response.context["failed_count"] == 0
    assert "none yet" in html
    ReconciliationReport.objects.create(started_at=timezone.now(), checked=3, matched=3, signatures_scanned=9)
    again = staff_client.get("/console/health/").content.decode()
    assert "3 of 3 payouts matched the chain, 0 mismatched" in again


def test_engine_health_shows_rpc_endpoints_without_credentials(staff_client, settings):
    """The console uses the same redaction as ``/healthz``: no user info, path token or query."""
    from django_q.models import Failure

    settings.QV_RPC_URLS = [
        "https://rpc-user:rpc-pass@rpc-a.example:8443/?api-key=query-secret",
        "https://b.solana-mainnet.example/path-token-secret/",
    ]
    Failure.objects.create(
        id="f" * 32, name="task", func="profitshare.tasks.retry_due_ious_task", started=timezone.now(),
        stopped=timezone.now(), success=False,
        result="ConnectError: https://rpc-user:rpc-pass@rpc-a.example:8443/?api-key=query-secret refused",
    )
    ReconciliationReport.objects.create(
        started_at=timezone.now(), error="RpcUnavailable: https://b.solana-mainnet.example/path-token-secret/ 503",
    )
    html = staff_client.get("/console/health/").content.decode()
    for secret in ("rpc-user", "rpc-pass", "query-secret", "path-token-secret"):
        assert secret not in html
    assert "https://rpc-a.example:8443/?…, https://b.solana-mainnet.example/…" in html
    assert "ConnectError: https://rpc-a.example:8443/?… refused" in html
    assert "RpcUnavailable: https://b.solana-mainnet.example/… 503" in html


def test_a_payout_page_shows_one_signature_on_the_atomic_path_and_three_step_by_step(staff_client, localnet, gateway):
    from profitshare.services.engine import process_distribution

    atomic_world, stepwise_world = make_world(localnet), make_world(localnet)
    localnet.rpc("localnet_fundUsdc", str(stepwise_world.agent.pubkey()), 5)  # other USDC: step by step
    atomic = atomic_world.close(10_000_000).distribution
    stepwise = stepwise_world.close(20_000_000).distribution
    for distribution in (atomic, stepwise):
        process_distribution(distribution.pk, gateway=gateway)
    html = staff_client.get(f"/console/distributions/{atomic.pk}/").content.decode()
    assert "one transaction: settle, withdraw 1.00" in html and 'id="drift-actions"' not in html
    assert html.count('class="sig"') == 1
    html = staff_client.get(f"/console/distributions/{stepwise.pk}/").content.decode()
    assert 'id="drift-actions"' in html and html.count('class="sig"') == 3
    assert "step-by-step payout: atomic not used" in html  # the audit trail says why
