"""Browser test of the console's webhook deliveries: an admin sees an IOU's events, one of
them failing at the platform's real receiving server, redelivers a delivered one in place
(htmx) and filters the list; the receiver then gets it again with the same event id. The page
is saved under ``docs/screenshots/``."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from profitshare.models import WebhookDelivery
from profitshare.services.webhook_delivery import deliver_due
from tests.pages.test_browser import shot, sign_in_staff
from tests.webhooks.conftest import receiver  # noqa: F401 - the platform's endpoint
from tests.world import owe_for_lack_of_sol

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_redelivers_a_webhook_in_place(page: Page, live_server, localnet, gateway, receiver):  # noqa: F811
    receiver.refuse = lambda request: request.json["type"] == "iou.opened"  # the platform fails on this one
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    deliver_due(drain_seconds=5)
    receiver.refuse = None
    owed = WebhookDelivery.objects.get(event__type="distribution.owed")
    opened = WebhookDelivery.objects.get(event__type="iou.opened")
    sign_in_staff(page, live_server, "/console/webhooks/")
    expect(page.locator("#deliveries-table tbody tr")).to_have_count(2)
    expect(page.locator(f"#delivery-{opened.pk}")).to_contain_text("HTTP 503")
    expect(page.locator(f"#delivery-{owed.pk}")).to_have_attribute("data-status", "delivered")
    shot(page, "console-webhooks")

    page.locator(f"#delivery-{owed.pk}").get_by_role("button", name="Redeliver").click()
    expect(page.locator(f"#delivery-{owed.pk}")).to_have_attribute("data-status", "pending")
    expect(page.locator(f"#delivery-{owed.pk}")).to_contain_text("Redelivery queued.")
    first = receiver.requests[0]
    deliver_due(drain_seconds=5)  # the cluster's work (its schedule, or the queued task)
    again = [r for r in receiver.requests if r.event_id == first.event_id]
    assert len(again) == 2 and again[1].body == first.body

    page.select_option("select[name=status]", "delivered")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{live_server.url}/console/webhooks/?status=delivered&type=&endpoint=&subscription=")
    expect(page.locator("#deliveries-table tbody tr")).to_have_count(1)  # iou.opened waits for its retry
    expect(page.locator(f"#delivery-{owed.pk}")).to_have_attribute("data-status", "delivered")
