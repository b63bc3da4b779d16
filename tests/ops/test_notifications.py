"""Telegram notifications through the outbox (docs/design.md, "Admins are
told"): creators hear of each payout,
admins of alerts; deliveries go to a fake Bot API — a real HTTP server started in the test —
and an outage, a 429 or a refusal loses nothing and never blocks a payout."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from profitshare.models import CreatorWallet, DistributionStatus
from profitshare.models.outbox import OutboxMessage, OutboxStatus
from profitshare.services import notifications
from profitshare.services.engine import process_distribution
from profitshare.tasks import deliver_notifications_task
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "123456:TEST-token"


class FakeBotApi:
    """A minimal Telegram Bot API: ``POST /bot<token>/sendMessage``. ``answers`` is a queue of
    ``(status, body)`` to give (then ``{"ok": true}``); ``requests`` what it received.
    ``getUpdates`` answers the ``updates`` from the asked ``offset`` on (as Telegram does: the
    ones below it are confirmed and gone; ``user_sends`` adds one), ``offsets`` the asked ones."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []
        self.updates: list[dict] = []
        self.offsets: list[int] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == f"/bot{TOKEN}/getUpdates":
                    api.offsets.append(body.get("offset", 0))
                    status, answer = 200, {"ok": True, "result": [
                        u for u in api.updates if u["update_id"] >= body.get("offset", 0)]}
                elif self.path != f"/bot{TOKEN}/sendMessage":
                    status, answer = 404, {"ok": False, "error_code": 404, "description": "Not Found"}
                else:
                    api.requests.append(body)
                    status, answer = api.answers.pop(0) if api.answers else (200, {"ok": True, "result": {"message_id": len(api.requests)}})
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def user_sends(self, chat_id: int, text: str) -> None:
        """A user sends ``text`` to the bot from private chat ``chat_id`` (a new update)."""
        self.updates.append({"update_id": 1000 + len(self.updates),
                             "message": {"message_id": 1, "chat": {"id": chat_id, "type": "private"}, "text": text}})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bot_api(settings):
    api = FakeBotApi()
    settings.QV_TELEGRAM_BOT_TOKEN = TOKEN
    settings.QV_TELEGRAM_API_URL = api.url
    yield api
    api.stop()


def paid_to_a_linked_creator(localnet, gateway):
    world = make_world(localnet)
    CreatorWallet.objects.filter(address=str(world.creator)).update(telegram_chat_id="4242")
    distribution = world.close(50_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    return world, distribution


def test_creator_gets_one_message_per_payout(localnet, gateway, bot_api, settings):
    world, distribution = paid_to_a_linked_creator(localnet, gateway)
    assert notifications.queue_payout_notices() == 1
    assert notifications.queue_payout_notices() == 0  # one per payout
    assert notifications.deliver_due() == notifications.DeliveryCounts(sent=1)
    [request] = bot_api.requests
    signature = distribution.attempts_log.get().signature
    assert request["chat_id"] == "4242"
    assert "5 USDC" in request["text"] and world.subscription.bot.name in request["text"]
    assert settings.QV_EXPLORER_TX_URL.format(signature=signature) in request["text"]
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts, message.dedupe_key) == (OutboxStatus.SENT, 1, f"payout:{signature}")
    assert notifications.deliver_due() == notifications.DeliveryCounts()  # nothing sent twice


def test_a_split_payout_tells_the_creator_their_own_leg_and_owed_referrals_are_not_theirs(localnet, gateway, bot_api):
    from solders.keypair import Keypair

    from profitshare.models import IOU
    from profitshare.services.referrals import link_referral

    world = make_world(localnet)
    referrer = str(Keypair().pubkey())
    localnet.rpc("localnet_fundUsdc", referrer, 1)
    link_referral(str(world.creator), referrer)  # level 1 earns 5 % of the share
    CreatorWallet.objects.filter(address=str(world.creator)).update(telegram_chat_id="4242")
    process_distribution(world.close(50_000_000).distribution.pk, gateway=gateway)  # share 5 USDC
    assert notifications.queue_payout_notices() == 1
    assert "You were paid 4.75 USDC" in OutboxMessage.objects.get().text
    OutboxMessage.objects.all().delete()
    poor = make_world(localnet, lamports=1_000_000, bot=world.subscription.bot)  # no SOL: both legs owed
    process_distribution(poor.close(50_000_000).distribution.pk, gateway=gateway)
    assert IOU.objects.filter(subscription=poor.subscription).count() == 2
    assert notifications.queue_creator_notices() == 1  # the creator's own debt only
    assert OutboxMessage.objects.get().text.startswith("4.75 USDC from")


def test_the_notice_links_the_payout_as_the_pages_do(localnet, gateway, bot_api, settings):
    """One explorer link for pages and notices: an explorer URL with other braces in it (a
    cluster parameter) is kept as written, only ``{signature}`` is replaced."""
    settings.QV_EXPLORER_TX_URL = "https://explorer.example/tx/{signature}?cluster={custom}"
    _, distribution = paid_to_a_linked_creator(localnet, gateway)
    assert notifications.queue_payout_notices() == 1
    signature = distribution.attempts_log.get().signature
    text = OutboxMessage.objects.get().text
    assert f"https://explorer.example/tx/{signature}?cluster={{custom}}" in text


def test_creators_without_a_chat_get_nothing(localnet, gateway, bot_api):
    world = make_world(localnet)
    process_distribution(world.close(50_000_000).distribution.pk, gateway=gateway)
    assert notifications.queue_payout_notices() == 0


def test_admins_get_the_engines_alerts_too(localnet, gateway, bot_api, settings):
    settings.QV_TELEGRAM_ADMIN_CHAT_IDS = ["-1001", "-1002"]
    world = make_world(localnet, lamports=1_000_000)  # no SOL: the engine raises iou_created
    process_distribution(world.close(40_000_000).distribution.pk, gateway=gateway)
    assert OutboxMessage.objects.count() == 2  # queued with the alert, by its rule in settings
    result = deliver_notifications_task()
    assert result["sent"] == 2
    assert sorted(r["chat_id"] for r in bot_api.requests) == ["-1001", "-1002"]
    assert all("iou_created" in r["text"] and "4 USDC" in r["text"] for r in bot_api.requests)
    assert deliver_notifications_task()["queued"] == 0


def test_an_outage_loses_nothing_and_never_blocks_a_payout(localnet, gateway, bot_api, settings):
    settings.QV_OUTBOX_RETRY_BASE_SECONDS = 30
    bot_api.answers = [(502, {"ok": False, "description": "Bad Gateway"})]
    world, distribution = paid_to_a_linked_creator(localnet, gateway)
    distribution.refresh_from_db()
    assert distribution.status == DistributionStatus.PAID and world.creator_usdc() == 5_000_000
    notifications.queue_payout_notices()
    now = timezone.now()
    assert notifications.deliver_due(now=now) == notifications.DeliveryCounts(retried=1)
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)
    assert "502" in message.last_error and message.next_attempt_at >= now + timedelta(seconds=30)
    assert notifications.deliver_due(now=now) == notifications.DeliveryCounts()  # not due yet
    assert notifications.deliver_due(now=now + timedelta(seconds=31)) == notifications.DeliveryCounts(sent=1)
    assert len(bot_api.requests) == 2


def test_telegram_retry_after_is_honoured(localnet, gateway, bot_api):
    bot_api.answers = [(429, {"ok": False, "error_code": 429, "description": "Too Many Requests",
                              "parameters": {"retry_after": 600}})]
    notifications.enqueue("777", "hello")
    now = timezone.now()
    notifications.deliver_due(now=now)
    message = OutboxMessage.objects.get()
    assert message.next_attempt_at >= now + timedelta(seconds=600) and "429" in message.last_error


def test_an_unreachable_api_is_retried_then_given_up(localnet, settings):
    settings.QV_TELEGRAM_BOT_TOKEN = TOKEN
    settings.QV_TELEGRAM_API_URL = "http://127.0.0.1:9"
    settings.QV_OUTBOX_MAX_ATTEMPTS = 2
    notifications.enqueue("777", "hello")
    now = timezone.now()
    assert notifications.deliver_due(now=now) == notifications.DeliveryCounts(retried=1)
    assert notifications.deliver_due(now=now + timedelta(days=1)) == notifications.DeliveryCounts(failed=1)
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts) == (OutboxStatus.FAILED, 2)
    assert "ConnectError" in message.last_error


def test_without_a_token_messages_are_only_stored(localnet, settings):
    settings.QV_TELEGRAM_BOT_TOKEN = ""
    notifications.enqueue("777", "hello")
    assert notifications.deliver_due() == notifications.DeliveryCounts()
    assert OutboxMessage.objects.get().status == OutboxStatus.PENDING


def test_bad_input_writes_nothing(db):
    with pytest.raises(ValueError):
        notifications.enqueue(" ", "hello")
    assert notifications.enqueue("1", "a", dedupe_key="k") is not None
    assert notifications.enqueue("1", "b", dedupe_key="k") is None
    assert OutboxMessage.objects.count() == 1
