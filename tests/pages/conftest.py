"""Fixtures for the page tests: real payouts and real IOUs on the local node, clients signed in
as a wallet (session) or as Django staff."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from solders.keypair import Keypair

from profitshare.models import IOU, Distribution
from profitshare.services.engine import process_distribution
from profitshare.views.common import SESSION_WALLET
from tests.world import World, make_world


@dataclass
class Earnings:
    """A creator (with its keypair) paid on real closes, plus a second subscriber whose agent
    lacks SOL so one distribution became an IOU."""

    creator: Keypair
    paid_world: World
    iou_world: World
    paid: list[Distribution]
    iou: IOU

    @property
    def creator_address(self) -> str:
        """The creator's wallet address (base58)."""
        return str(self.creator.pubkey())


def sign_in_as(client, address: str):
    """Put a signed-in wallet in the test client's session (what SIWS verification does)."""
    session = client.session
    session[SESSION_WALLET] = address
    session.save()
    return client


def page_text(response) -> str:
    """The text a person reads on a page: its HTML without tags, white space folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def pay(world: World, gateway, pnl: int) -> Distribution:
    """Report a close of ``pnl`` and run the engine on it; returns the distribution."""
    distribution = world.close(pnl).distribution
    return process_distribution(distribution.pk, gateway=gateway)


@pytest.fixture
def earnings(localnet, gateway) -> Earnings:
    """Three paid closes (40, 25 and 12.5 USDC PnL at 10 %) and one IOU (insufficient SOL),
    all on the creator's one bot, through the real engine and the local node."""
    creator = Keypair()
    paid_world = make_world(localnet, bot__creator__address=str(creator.pubkey()), bot__name="Momentum")
    paid = [pay(paid_world, gateway, pnl) for pnl in (40_000_000, 25_000_000, 12_500_000)]
    iou_world = make_world(localnet, lamports=1_000_000, bot=paid_world.subscription.bot)
    owed = pay(iou_world, gateway, 30_000_000)
    return Earnings(creator, paid_world, iou_world, paid, IOU.objects.get(distribution=owed))


@dataclass
class SplitPayouts:
    """Split shares paid by the real engine on the local node: a creator referred three levels
    up (level 1 signs in with its keypair; level 3 has no USDC token account, so its legs are
    carried for it) and a 1.5 % platform fee. ``paid``: a 100 USDC close at 10 %, every leg
    but level 3's paid in one transaction; ``owed``: a 40 USDC close of a second subscriber
    whose agent lacks SOL, an IOU per leg."""

    referrer: Keypair
    treasury: str
    levels: list[str]
    paid_world: World
    iou_world: World
    paid: Distribution
    owed: Distribution

    @property
    def creator(self) -> str:
        """The creator's wallet address."""
        return str(self.paid_world.creator)


@pytest.fixture
def split_payouts(localnet, gateway, settings) -> SplitPayouts:
    """See ``SplitPayouts``: intake records the closes with the chain linked, the engine
    (``process_distribution``) pays and owes the legs."""
    from tests.pages.splits import address, configure, link_chain

    referrer, treasury = Keypair(), address()
    levels = [str(referrer.pubkey()), address(), address()]
    configure(settings, treasury)
    for owner in (treasury, *levels[:2]):  # level 3 has no USDC token account
        localnet.rpc("localnet_fundUsdc", owner, 1)
    paid_world = make_world(localnet, bot__name="Momentum")
    link_chain(str(paid_world.creator), levels)
    paid = pay(paid_world, gateway, 100_000_000)
    iou_world = make_world(localnet, lamports=1_000_000, bot=paid_world.subscription.bot)
    owed = pay(iou_world, gateway, 40_000_000)
    return SplitPayouts(referrer, treasury, levels, paid_world, iou_world, paid, owed)


@pytest.fixture
def q_sync(monkeypatch):
    """django-q2 runs queued tasks at once, in this process (its ``sync`` mode; ``Conf`` reads
    the setting at import, so the flag is set on it directly)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def staff_client(client):
    """A client signed in as a Django staff user (the admin console's audience)."""
    get_user_model().objects.create_user("ops", "ops@example.com", "pw-for-tests", is_staff=True)
    assert client.login(username="ops", password="pw-for-tests")
    return client


# --- browser tests (pytest-playwright driving Debian's Chromium) ---------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def pytest_configure(config):
    """Register the ``browser`` marker (select with ``-m browser``; they run by default).

    Playwright's sync API keeps an event loop running in the test thread, which makes Django
    refuse ORM calls there (the test database set-up, the tests' own queries between browser
    steps). Those calls are synchronous all the same, so Django's guard is lifted for the test
    process (pytest-django's documented recipe for Playwright)."""
    config.addinivalue_line("markers", "browser: drives Debian's Chromium through pytest-playwright")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Run the browser tests last. Playwright's sync API leaves its event loop registered as the
    running loop of the main thread for the rest of the session (its session fixture), and
    code that calls ``asyncio.run`` (driftpy's adapter) refuses to run under a running loop;
    pytest-django's reordering would otherwise put later non-database tests after them."""
    browser = [item for item in items if item.get_closest_marker("browser")]
    if browser:
        others = [item for item in items if not item.get_closest_marker("browser")]
        items[:] = others + browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch Debian's Chromium (``playwright install`` cannot download here); Playwright gives
    each launch a fresh, empty user-data-dir."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """A desktop viewport for the screenshots, and downloads allowed (CSV export)."""
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}, "accept_downloads": True}
