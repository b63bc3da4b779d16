"""The console's webhook deliveries: staff only, the list (event, endpoint, attempts, last
status and error, next try) with filters, and redelivery of one or of the filtered set, which
the real receiver then gets again with the same event id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from profitshare.models import AuditEvent, WebhookDelivery
from profitshare.services import webhook_delivery, webhooks
from profitshare.services.webhooks import PendingWebhook

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def history(receiver):
    """Three events of sub-a delivered, one of sub-b failing (a 500 from the receiver)."""
    with transaction.atomic():
        webhooks.emit_many([
            PendingWebhook("distribution.paid", "sub-a", {"n": 1}), PendingWebhook("iou.opened", "sub-a", {"n": 2}),
            PendingWebhook("iou.paid", "sub-a", {"n": 3}), PendingWebhook("subscription.delinquent", "sub-b", {"n": 4}),
        ])
    receiver.refuse = lambda request: request.json["type"] == "subscription.delinquent"
    webhook_delivery.deliver_due(drain_seconds=5)
    receiver.refuse = None
    return receiver


def test_deliveries_are_for_staff_only(client, history):
    assert client.get("/console/webhooks/").status_code == 302
    delivery = WebhookDelivery.objects.first()
    response = client.post(f"/console/webhooks/{delivery.pk}/redeliver/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_the_list_shows_event_endpoint_attempts_last_status_error_and_next_try(staff_client, history):
    page = staff_client.get("/console/webhooks/").content.decode()
    failing = WebhookDelivery.objects.get(event__type="subscription.delinquent")
    row = page[page.index(f'id="delivery-{failing.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "subscription.delinquent" in row and history.url in row and "sub-b" in row
    assert "<td>1</td><td>503</td>" in row and "HTTP 503" in row
    assert failing.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") in row
    assert page.count('class="badge badge-delivered"') == 3
    assert "Redeliver all shown" in page


def rows(html: str) -> list[int]:
    """The delivery ids of the table's rows, in order."""
    return [int(part.split('"')[0]) for part in html.split('<tr id="delivery-')[1:]]


def pk(type_: str) -> int:
    return WebhookDelivery.objects.get(event__type=type_).pk


def test_filters_narrow_the_list(staff_client, history):
    assert rows(staff_client.get("/console/webhooks/").content.decode()) == sorted(
        WebhookDelivery.objects.values_list("pk", flat=True), reverse=True)  # newest first
    page = staff_client.get("/console/webhooks/?status=pending").content.decode()
    assert rows(page) == [pk("subscription.delinquent")]
    assert rows(staff_client.get("/console/webhooks/?subscription=sub-a&type=iou.paid").content.decode()) == [pk("iou.paid")]
    fragment = staff_client.get("/console/webhooks/?status=nonsense", HTTP_HX_TARGET="deliveries", **HTMX)
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section id="deliveries">') and "<html" not in html
    assert rows(html) == [] and "No webhook deliveries." in html  # an invalid filter matches nothing


def test_redeliver_one_in_place_sends_it_again_with_the_same_event_id(staff_client, history):
    delivery = WebhookDelivery.objects.get(event__type="iou.opened")
    first = next(r for r in history.requests if r.json["type"] == "iou.opened")
    response = staff_client.post(f"/console/webhooks/{delivery.pk}/redeliver/", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and html.startswith(f'<tr id="delivery-{delivery.pk}"')
    assert "Redelivery queued." in html and 'data-status="pending"' in html
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at <= timezone.now()
    assert delivery.give_up_at > timezone.now() + timedelta(hours=71)
    event = AuditEvent.objects.get(entity="webhook_delivery", entity_id=str(delivery.pk))
    assert (event.actor, event.from_status, event.to_status) == ("admin:ops", "delivered", "pending")
    webhook_delivery.deliver_due(drain_seconds=5)
    again = [r for r in history.requests if r.json["type"] == "iou.opened"]
    assert len(again) == 2 and again[1].event_id == first.event_id and again[1].body == first.body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


def test_redeliver_the_filtered_set_in_place(staff_client, history):
    page = "http://testserver/console/webhooks/?subscription=sub-a"
    response = staff_client.post("/console/webhooks/redeliver/", {"subscription": "sub-a"},
                                 HTTP_HX_CURRENT_URL=page, HTTP_HX_TARGET="deliveries", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "Redelivery: 3 queued, 0 skipped" in html
    assert pk("subscription.delinquent") not in rows(html) and len(rows(html)) == 3  # as the page showed it
    assert set(WebhookDelivery.objects.filter(ordering_key="sub-a").values_list("status", flat=True)) == {"pending"}
    assert WebhookDelivery.objects.get(ordering_key="sub-b").attempts == 1  # not in the set: untouched
    before = len(history.requests)
    webhook_delivery.deliver_due(drain_seconds=5)
    assert [r.json["data"]["n"] for r in history.requests[before:]] == [1, 2, 3]  # in order again


def test_redeliver_without_javascript_redirects_with_a_message(staff_client, history):
    response = staff_client.post("/console/webhooks/redeliver/", {"status": "pending"}, follow=True)
    assert "Redelivery: 1 queued" in response.content.decode()
    assert response.redirect_chain[-1][0] == "/console/webhooks/?status=pending"
    assert staff_client.post("/console/webhooks/999999/redeliver/").status_code == 404


def test_a_delivery_being_sent_right_now_is_not_redelivered(staff_client, history):
    """A worker holds the row (it is sending it): the redelivery changes nothing and says so."""
    import threading

    delivery = WebhookDelivery.objects.get(event__type="iou.opened")
    locked, release = threading.Event(), threading.Event()

    def worker():
        from django.db import connection

        with transaction.atomic():
            WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert locked.wait(10)
        response = staff_client.post(f"/console/webhooks/{delivery.pk}/redeliver/", **HTMX)
        assert response.status_code == 409 and "Being sent right now" in response.content.decode()
        assert not AuditEvent.objects.filter(entity="webhook_delivery").exists()
    finally:
        release.set()
        thread.join()
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
