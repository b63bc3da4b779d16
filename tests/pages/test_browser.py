"""Browser tests: Debian's Chromium (pytest-playwright) against the live server, on real
payouts and IOUs from the local node. A creator signs in with a real ed25519 signature (a
fake injected wallet whose ``signMessage`` calls back into Python, which holds the keypair),
sees earnings, filters, pages and exports CSV; a subscriber sees the share deducted and the
debt banner; an admin voids one IOU with a reason and retries another until it settles;
another user's URL is a 404. Each page is saved under ``docs/screenshots/``."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect
from solders.keypair import Keypair

from profitshare.models import IOU, Alert, IouStatus
from profitshare.tasks import retry_claimed_iou_task
from tests.factories import PublishedBotFactory
from tests.pages.conftest import pay
from tests.world import make_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

FAKE_WALLET = """
window.solana = {
  isFake: true,
  publicKey: null,
  async connect() {
    const key = await window.qvWalletAddress();
    this.publicKey = { toString: () => key };
    return { publicKey: this.publicKey };
  },
  async signMessage(message, encoding) {
    const signature = await window.qvWalletSign(Array.from(message));
    return { signature: Uint8Array.from(signature), publicKey: this.publicKey };
  },
};
"""


# A Wallet Standard wallet (github.com/wallet-standard/wallet-standard) whose key stays in
# Python: it registers the way @wallet-standard/wallet's registerWallet does (a
# `wallet-standard:register-wallet` event whose detail calls back with the app's `{register}`,
# and a listener for the app's `wallet-standard:app-ready`), either at once (before the page's
# own script) or once the page has loaded. Every feature call is recorded in sessionStorage
# (``calls(page)``), which outlives the sign-in's page loads.
STANDARD_WALLET = """
(() => {
  const NAME = %(name)s;
  const log = (call) => {
    const calls = JSON.parse(sessionStorage.getItem("qvCalls") || "[]");
    sessionStorage.setItem("qvCalls", JSON.stringify(calls.concat([call])));
  };
  const wallet = {
    version: "1.0.0",
    name: NAME,
    icon: "data:image/svg+xml;base64,PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnIHZpZXdCb3g9JzAgMCAxIDEnPjxyZWN0IHdpZHRoPScxJyBoZWlnaHQ9JzEnIGZpbGw9JyM2MzY2ZjEnLz48L3N2Zz4=",
    chains: ["solana:mainnet", "solana:devnet"],
    accounts: [],
    features: {
      "standard:connect": {
        version: "1.0.0",
        async connect() {
          log(NAME + " standard:connect");
          const address = await window.qvWalletAddress();
          const publicKey = Uint8Array.from(await window.qvWalletPublicKey());
          wallet.accounts = [{ address, publicKey, chains: wallet.chains, features: ["solana:signMessage"] }];
          return { accounts: wallet.accounts };
        },
      },
      "standard:events": { version: "1.0.0", on() { return () => {}; } },
      "solana:signMessage": {
        version: "1.0.0",
        async signMessage(...inputs) {
          log(NAME + " solana:signMessage");
          const outputs = [];
          for (const { account, message } of inputs) {
            if (!wallet.accounts.includes(account)) throw new Error("unknown account");
            const signature = Uint8Array.from(await window.qvWalletSign(Array.from(message)));
            outputs.push({ signedMessage: message, signature });
          }
          return outputs;
        },
      },
    },
  };
  function registerWallet() {
    const callback = ({ register }) => register(wallet);
    window.dispatchEvent(new CustomEvent("wallet-standard:register-wallet", { detail: callback }));
    window.addEventListener("wallet-standard:app-ready", ({ detail: api }) => callback(api));
  }
  if (%(late)s) window.addEventListener("load", () => setTimeout(registerWallet, 200));
  else registerWallet();
})();
"""

# An injected provider that records whether it was asked anything.
RECORDING_INJECTED = """
(() => {
  const log = (call) => {
    const calls = JSON.parse(sessionStorage.getItem("qvCalls") || "[]");
    sessionStorage.setItem("qvCalls", JSON.stringify(calls.concat([call])));
  };
  window.solana = {
    publicKey: null,
    async connect() { log("injected connect"); throw new Error("not this one"); },
    async signMessage() { log("injected signMessage"); throw new Error("not this one"); },
  };
})();
"""


def calls(page: Page) -> list[str]:
    """The fake wallets' calls recorded in this tab's sessionStorage, oldest first."""
    return page.evaluate("JSON.parse(sessionStorage.getItem('qvCalls') || '[]')")


def with_standard_wallet(page: Page, keypair: Keypair, *, name: str = "QV Test Wallet", late: bool = False) -> Page:
    """Register a fake Wallet Standard wallet in the page (see ``STANDARD_WALLET``) whose
    ``solana:signMessage`` returns a real ed25519 signature made here with ``keypair``."""
    page.expose_function("qvWalletAddress", lambda: str(keypair.pubkey()))
    page.expose_function("qvWalletPublicKey", lambda: list(bytes(keypair.pubkey())))
    page.expose_function("qvWalletSign", lambda data: list(bytes(keypair.sign_message(bytes(data)))))
    page.add_init_script(STANDARD_WALLET % {"name": json.dumps(name), "late": "true" if late else "false"})
    return page


def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot as docs/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def with_wallet(page: Page, keypair: Keypair) -> Page:
    """Inject a wallet into the page whose key stays in Python: ``signMessage`` sends the
    bytes here and gets a real ed25519 signature back."""
    page.expose_function("qvWalletAddress", lambda: str(keypair.pubkey()))
    page.expose_function("qvWalletSign", lambda data: list(bytes(keypair.sign_message(bytes(data)))))
    page.add_init_script(FAKE_WALLET)
    return page


def sign_in(page: Page, base: str, next_path: str) -> None:
    """Open a page that needs a wallet, connect, sign the SIWS message, land on the page."""
    page.goto(f"{base}{next_path}")
    expect(page).to_have_url(re.compile(r"/signin/"))
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#siws-message-text")).to_contain_text("wants you to sign in with your Solana account")
    expect(page.locator("#siws-message-text")).to_contain_text("Nonce: ")
    page.get_by_role("button", name="Sign with wallet").click()
    expect(page).to_have_url(f"{base}{next_path}")


def test_creator_signs_in_sees_earnings_filters_pages_and_exports(page: Page, live_server, localnet, gateway, tmp_path):
    creator = Keypair()
    world = make_world(localnet, bot__creator__address=str(creator.pubkey()), bot__name="Momentum")
    for pnl in (40_000_000, 25_000_000, 12_500_000):
        pay(world, gateway, pnl)
    owing = make_world(localnet, lamports=1_000_000, bot=world.subscription.bot)
    pay(owing, gateway, 30_000_000)
    for n in range(30):  # recorded, not paid yet: enough rows for a second page
        world.close(1_000_000 + n, realize=False)
    stranger_bot = PublishedBotFactory(name="Not yours")

    with_wallet(page, creator)
    page.goto(f"{live_server.url}/signin/?next=/creator/")
    shot(page, "signin")
    sign_in(page, live_server.url, "/creator/")
    expect(page.locator('[data-total="lifetime_paid"]')).to_have_text("7.750000")
    expect(page.locator('[data-total="owed_in_ious"]')).to_have_text("3.000000")
    expect(page.locator("#earnings-chart")).to_be_visible()
    rows = page.locator("#history-table tbody tr")
    expect(rows).to_have_count(25)
    shot(page, "creator-dashboard")

    page.get_by_role("link", name="Older →").click()  # htmx swaps the history in place
    expect(page).to_have_url(re.compile(r"after="))
    expect(rows).to_have_count(9)
    page.get_by_role("link", name="← Newer").click()
    expect(rows).to_have_count(25)

    page.select_option("#id_status", "paid")
    expect(rows).to_have_count(3)
    expect(page).to_have_url(re.compile(r"status=paid"))
    expect(page.locator("#history-table a.sig")).to_have_count(3)
    shot(page, "creator-history-filtered")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    path = tmp_path / "earnings.csv"
    download.value.save_as(path)
    exported = list(csv.DictReader(path.open()))
    assert sorted(r["paid_usdc"] for r in exported) == ["1.250000", "2.500000", "4.000000"]
    assert all(len(r["signatures"]) >= 80 for r in exported)

    response = page.goto(f"{live_server.url}/creator/bots/{stranger_bot.bot_id}/")
    assert response.status == 404
    page.goto(f"{live_server.url}/creator/bots/{world.subscription.bot.bot_id}/")
    shot(page, "creator-bot")
    page.goto(f"{live_server.url}/bots/{world.subscription.bot.bot_id}/snippet/?page=1")
    expect(page.locator(".snippet")).to_contain_text("10.00 % profit share")
    shot(page, "marketplace-snippet")


def test_subscriber_sees_the_share_deducted_and_the_debt_banner(page: Page, live_server, localnet, gateway):
    subscriber = Keypair()
    world = make_world(localnet, subscriber_wallet=str(subscriber.pubkey()), bot__name="Momentum")
    for pnl in (40_000_000, 25_000_000):
        pay(world, gateway, pnl)
    world.close(-5_000_000)
    debtor = Keypair()
    owing = make_world(localnet, lamports=1_000_000, subscriber_wallet=str(debtor.pubkey()), bot=world.subscription.bot)
    pay(owing, gateway, 30_000_000)
    other = world.subscription.subscription_id

    with_wallet(page, subscriber)
    sign_in(page, live_server.url, f"/subscriber/{other}/")
    expect(page.locator('[data-total="share"]')).to_have_text("6.500000")
    expect(page.locator('[data-total="net_pnl"]')).to_have_text("53.500000")
    expect(page.locator("#trades-table tbody tr")).to_have_count(3)
    expect(page.locator("#trades-table")).to_contain_text("36.000000")  # 40 less the 4 USDC share
    expect(page.locator("#guard-banner")).to_contain_text("Nothing blocks withdrawal")
    shot(page, "subscriber-trades")
    assert page.goto(f"{live_server.url}/subscriber/{owing.subscription.subscription_id}/").status == 404

    context = page.context.browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        debtor_page = with_wallet(context.new_page(), debtor)
        sign_in(debtor_page, live_server.url, f"/subscriber/{owing.subscription.subscription_id}/")
        expect(debtor_page.locator("#guard-banner")).to_contain_text("Withdrawal is blocked")
        expect(debtor_page.locator("#guard-banner")).to_contain_text("3.000000")
        expect(debtor_page.locator("#trades-table")).to_contain_text("Agent wallet lacks SOL")
        shot(debtor_page, "subscriber-debt-banner")
        assert debtor_page.goto(f"{live_server.url}/subscriber/{other}/").status == 404
    finally:
        context.close()


def sign_in_staff(page: Page, live_server, next_path: str) -> None:
    """Create the staff user "ops" and sign in through Django's admin login, landing on ``next_path``."""
    get_user_model().objects.create_user("ops", password="pw-for-tests", is_staff=True)
    page.goto(f"{live_server.url}/admin/login/?next={next_path}")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")


def test_admin_voids_one_debt_and_retries_another_until_it_settles(page: Page, live_server, localnet, gateway):
    world_a = make_world(localnet, lamports=1_000_000, bot__name="Momentum")
    iou_a = IOU.objects.get(distribution=pay(world_a, gateway, 30_000_000))
    world_b = make_world(localnet, lamports=1_000_000, bot__name="Mean reversion")
    iou_b = IOU.objects.get(distribution=pay(world_b, gateway, 70_000_000))
    sign_in_staff(page, live_server, "/console/")
    expect(page).to_have_url(f"{live_server.url}/console/")
    expect(page.locator("#debts-table tbody tr")).to_have_count(2)
    expect(page.locator("#debt-totals")).to_contain_text("10.000000")
    shot(page, "console-debts")

    row_a = page.locator(f"#iou-{iou_a.pk}")
    page.once("dialog", lambda dialog: dialog.accept())
    row_a.locator("input[name=reason]").fill("creator waived it")
    row_a.get_by_role("button", name="Void").click()
    expect(page.locator(f"#iou-{iou_a.pk}")).to_have_attribute("data-status", "voided")
    expect(page.locator(f"#iou-{iou_a.pk}")).to_contain_text("Voided.")
    iou_a.refresh_from_db()
    assert (iou_a.status, iou_a.void_reason, iou_a.voided_by) == (IouStatus.VOIDED, "creator waived it", "admin:ops")

    localnet.rpc("requestAirdrop", world_b.subscription.agent_wallet.pubkey, 100_000_000)  # SOL topped up
    page.locator(f"#iou-{iou_b.pk}").get_by_role("button", name="Retry now").click()
    expect(page.locator(f"#iou-{iou_b.pk}")).to_have_attribute("data-status", "processing")
    expect(page.locator(f"#iou-{iou_b.pk}")).to_contain_text("retrying")
    shot(page, "console-retrying")
    assert retry_claimed_iou_task(iou_b.pk, "admin:ops") == IouStatus.PAID  # the cluster's work
    expect(page.locator(f"#iou-{iou_b.pk}")).to_have_attribute("data-status", "paid", timeout=10_000)
    assert world_b.creator_usdc() == 7_000_000

    page.goto(f"{live_server.url}/console/ious/{iou_b.pk}/")
    expect(page.locator("#attempts a.sig")).to_have_count(1)
    expect(page.locator("#audit-trail")).to_contain_text("payout landed")
    shot(page, "console-iou-detail")
    page.goto(f"{live_server.url}/console/distributions/{iou_a.distribution_id}/")
    expect(page.locator("#audit-trail")).to_contain_text("creator waived it")
    shot(page, "console-distribution-detail")
    page.goto(f"{live_server.url}/console/alerts/")
    first_alert = page.locator("#alerts tbody tr").first
    first_alert.get_by_role("button", name="Acknowledge").click()
    expect(first_alert.get_by_role("button", name="Acknowledge")).to_have_count(0)  # swapped in place
    expect(first_alert).to_contain_text(re.compile(r"admin:ops at \d{4}-\d\d-\d\d \d\d:\d\d"))
    assert Alert.objects.filter(acknowledged_by="admin:ops").count() == 1
    shot(page, "console-alerts")
    page.goto(f"{live_server.url}/console/health/")
    shot(page, "console-health")


def test_pages_read_without_javascript(browser, live_server, earnings):
    """With JavaScript off the data is all there: the server renders it."""
    from django.contrib.sessions.backends.db import SessionStore

    from profitshare.views.common import SESSION_WALLET

    session = SessionStore()
    session[SESSION_WALLET] = earnings.creator_address
    session.create()
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1440, "height": 900})
    try:
        context.add_cookies([{"name": "sessionid", "value": session.session_key, "url": live_server.url}])
        page = context.new_page()
        page.goto(f"{live_server.url}/creator/?status=paid")
        expect(page.locator('[data-total="lifetime_paid"]')).to_have_text("7.750000")
        expect(page.locator("#history-table tbody tr")).to_have_count(3)
        expect(page.locator("#daily-table")).to_be_attached()
    finally:
        context.close()


def test_a_wallet_standard_wallet_signs_in(page: Page, live_server):
    """Discovery by the Wallet Standard: the wallet registered before the page's script, so it
    answers the page's ``wallet-standard:app-ready``; connect and signMessage go through its
    ``standard:connect`` and ``solana:signMessage`` features with a real ed25519 key."""
    creator = Keypair()
    PublishedBotFactory(creator__address=str(creator.pubkey()), name="Standard bot")
    with_standard_wallet(page, creator)
    sign_in(page, live_server.url, "/creator/")
    expect(page.locator("h1")).to_contain_text(str(creator.pubkey()))
    # the fake wallet forgets its accounts when a page loads, so the signing page connects again
    assert calls(page) == [
        "QV Test Wallet standard:connect", "QV Test Wallet standard:connect", "QV Test Wallet solana:signMessage",
    ]


def test_a_wallet_registering_late_is_found_and_chosen_over_an_injected_one(page: Page, live_server):
    """A Wallet Standard wallet that registers after the page loaded (its
    ``wallet-standard:register-wallet`` event) gets its own button next to the injected
    provider's; the one chosen on the first page is the one asked to sign on the second."""
    subscriber = Keypair()
    page.add_init_script(RECORDING_INJECTED)
    with_standard_wallet(page, subscriber, name="Late Wallet", late=True)
    page.goto(f"{live_server.url}/signin/?next=/subscriber/")
    buttons = page.locator("#wallet-connect button")
    expect(buttons).to_have_count(2)
    expect(buttons.nth(0)).to_have_text("Connect wallet (Late Wallet)")
    expect(buttons.nth(1)).to_have_text("Connect wallet (Browser wallet)")
    shot(page, "signin-wallets")
    page.get_by_role("button", name="Connect wallet (Late Wallet)").click()
    expect(page.locator("#siws-message-text")).to_contain_text(str(subscriber.pubkey()))
    sign = page.locator("#wallet-sign button")
    expect(sign).to_have_count(1)
    expect(sign).to_have_text("Sign with wallet (Late Wallet)")
    sign.click()
    expect(page).to_have_url(f"{live_server.url}/subscriber/")
    expect(page.locator("main")).to_contain_text("no subscriptions")
    assert calls(page) == [  # the injected provider was never asked
        "Late Wallet standard:connect", "Late Wallet standard:connect", "Late Wallet solana:signMessage",
    ]


def test_admin_bulk_retry_reports_in_place(page: Page, live_server, localnet, gateway):
    """"Retry all shown" answers inside the page (htmx): the outcome above the table, the
    queued row polling until the retry settles; the page is not reloaded."""
    world = make_world(localnet, lamports=1_000_000, bot__name="Momentum")
    iou = IOU.objects.get(distribution=pay(world, gateway, 40_000_000))
    sign_in_staff(page, live_server, "/console/%3Freason%3Dinsufficient_sol")
    expect(page.locator(f"#iou-{iou.pk}")).to_have_attribute("data-status", "open")
    page.evaluate("window.qvSamePage = true")  # gone if the page reloads
    localnet.rpc("requestAirdrop", world.subscription.agent_wallet.pubkey, 100_000_000)  # SOL topped up
    page.get_by_role("button", name="Retry all shown").click()
    expect(page.locator("#bulk-result")).to_contain_text("Bulk retry: 1 queued, 0 skipped.")
    expect(page.locator(f"#iou-{iou.pk}")).to_have_attribute("data-status", "processing")
    assert page.evaluate("window.qvSamePage") is True
    expect(page).to_have_url(re.compile(r"/console/\?reason=insufficient_sol$"))
    shot(page, "console-bulk-retry")
    assert retry_claimed_iou_task(iou.pk, "admin:ops") == IouStatus.PAID  # the cluster's work
    expect(page.locator(f"#iou-{iou.pk}")).to_have_attribute("data-status", "paid", timeout=10_000)
    assert world.creator_usdc() == 4_000_000
