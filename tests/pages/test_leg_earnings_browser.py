"""Browser test of ``/earnings/`` (Debian's Chromium, pytest-playwright, the live server): a
referrer who published no bot signs in with a real ed25519 signature from an injected wallet,
sees its totals and the per-role chart drawn, filters its legs by role in place (htmx) and
exports them as CSV."""

from __future__ import annotations

import csv
import re

import pytest
from playwright.sync_api import Page, expect
from solders.keypair import Keypair

from tests.factories import SubscriptionFactory
from tests.pages.splits import address, configure, link_chain, pay_all, record
from tests.pages.test_browser import sign_in, with_wallet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_referrer_signs_in_and_reads_exports_its_legs(
    page: Page, live_server, settings, tmp_path
):
    referrer = Keypair()
    configure(settings, address())
    sub = SubscriptionFactory(bot__name="Momentum")
    link_chain(sub.bot.creator.address, [str(referrer.pubkey()), address()])
    paid = record(sub, 10_000_000)  # level 1: 0.05 USDC, paid
    pay_all(paid)
    record(sub, 20_000_000)  # level 1: 0.1 USDC, not paid yet

    with_wallet(page, referrer)
    sign_in(page, live_server.url, "/earnings/")
    expect(page.locator('[data-total="paid"]')).to_have_text("0.050000")
    expect(page.locator('[data-total="owed"]')).to_have_text("0.100000")
    expect(page.locator("#by-role tbody tr")).to_have_count(1)
    expect(page.locator("#earnings-chart")).to_be_visible()
    rows = page.locator("#legs-table tbody tr")
    expect(rows).to_have_count(2)
    page.screenshot(path=str(tmp_path / "earnings.png"), full_page=True)

    page.select_option("#id_role", "platform")  # htmx replaces the rows in place
    expect(page).to_have_url(re.compile(r"role=platform"))
    expect(page.locator("#legs-table td.empty")).to_have_text("No legs match these filters.")
    page.select_option("#id_role", "referral_1")
    expect(rows).to_have_count(2)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    path = tmp_path / "legs.csv"
    download.value.save_as(path)
    exported = list(csv.DictReader(path.open()))
    assert sorted((r["role"], r["paid_usdc"], r["owed_usdc"]) for r in exported) == [
        ("referral_1", "0.000000", "0.100000"),
        ("referral_1", "0.050000", "0.000000"),
    ]
