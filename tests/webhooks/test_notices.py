"""Notices people act on: a subscriber sees a scheduled rate increase or policy change on
their page (old, new, effective time); a creator links a Telegram chat with a one-time code
sent to the product's bot (read with getUpdates from a fake Bot API — a real HTTP server in
the test) and chooses which notices they get."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from profitshare.models import AuditEvent, CreatorNotices, CreatorWallet, TelegramLinkCode
from profitshare.models.outbox import OutboxMessage
from profitshare.services import notifications, telegram_links
from profitshare.services.bots import publish_bot
from profitshare.services.errors import InvalidInput
from profitshare.tasks import deliver_notifications_task
from tests.ops.test_notifications import TOKEN, FakeBotApi
from tests.pages.conftest import sign_in_as
from tests.world import make_world, owe_for_lack_of_sol

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def bot(settings):
    """The fake Bot API of the notification tests (``sendMessage`` and ``getUpdates``)."""
    fake = FakeBotApi()
    settings.QV_TELEGRAM_BOT_TOKEN = TOKEN
    settings.QV_TELEGRAM_API_URL = fake.url
    settings.QV_TELEGRAM_BOT_USERNAME = "QuantumVaultBot"
    yield fake
    fake.stop()


# --- subscribers: a scheduled terms change on their page -------------------------------------------
def test_the_subscriber_page_shows_a_scheduled_increase_with_old_new_and_when(client, localnet, settings):
    settings.QV_FEE_CHANGE_TIMELOCK_DAYS = 7
    world = make_world(localnet, bot__profit_share_bps=500)
    sub, bot = world.subscription, world.subscription.bot
    sign_in_as(client, sub.subscriber_wallet)
    page = client.get(f"/subscriber/{sub.subscription_id}/").content.decode()
    assert 'id="scheduled-terms"' not in page  # nothing scheduled: no notice
    publish_bot(bot_id=bot.bot_id, creator_wallet=bot.creator.address, name=bot.name, profit_share_bps=750,
                policy="high_water_mark", actor="api:platform")
    sub.refresh_from_db()
    page = client.get(f"/subscriber/{sub.subscription_id}/").content.decode()
    notice = page[page.index('id="scheduled-terms"'):page.index("</div>", page.index('id="scheduled-terms"'))]
    assert "<span data-old-bps>5.00 %</span>" in notice and "<span data-new-bps>7.50 %</span>" in notice
    assert "Per trade" in notice and "High-water mark" in notice
    assert sub.pending_effective_at.strftime("%Y-%m-%d %H:%M") + " UTC" in notice
    assert sub.pending_effective_at - timezone.now() > timedelta(days=6, hours=23)


def test_a_rate_increase_alone_does_not_mention_the_policy(client, localnet):
    world = make_world(localnet, bot__profit_share_bps=500)
    sub, bot = world.subscription, world.subscription.bot
    publish_bot(bot_id=bot.bot_id, creator_wallet=bot.creator.address, name=bot.name, profit_share_bps=1000,
                policy="per_trade", actor="api:platform")
    sign_in_as(client, sub.subscriber_wallet)
    page = client.get(f"/subscriber/{sub.subscription_id}/").content.decode()
    notice = page[page.index('id="scheduled-terms"'):]
    notice = notice[:notice.index("</div>")]
    assert "<span data-new-bps>10.00 %</span>" in notice and "policy" not in notice


# --- creators: linking a chat with a one-time code ------------------------------------------------
def test_a_creator_links_a_chat_by_sending_the_code_to_the_bot(client, localnet, bot):
    world = make_world(localnet)
    creator = world.subscription.bot.creator
    sign_in_as(client, creator.address)
    assert "Link Telegram" in client.get("/creator/").content.decode()
    panel = client.post("/creator/telegram/code/", **HTMX).content.decode()
    code = TelegramLinkCode.objects.get(creator=creator)
    assert f"/start {code.code}" in panel and f"https://t.me/QuantumVaultBot?start={code.code}" in panel
    bot.user_sends(5551234, "hello")  # not a start command: ignored
    bot.user_sends(5551234, f"/start {code.code}")
    result = deliver_notifications_task()
    assert result["linked"] == 1
    creator.refresh_from_db()
    assert creator.telegram_chat_id == "5551234"
    code.refresh_from_db()
    assert code.used_at is not None and code.chat_id == "5551234"
    assert [m["chat_id"] for m in bot.requests] == ["5551234"] and "Linked to creator wallet" in bot.requests[0]["text"]
    assert AuditEvent.objects.filter(entity="creator", entity_id=creator.address, reason="telegram chat linked").exists()
    assert deliver_notifications_task()["linked"] == 0  # the offset moved past what was read
    assert bot.offsets[-1] == 1002
    page = client.get("/creator/").content.decode()
    assert "A Telegram chat is linked" in page and 'name="payouts" checked' in page


def test_a_used_expired_or_unknown_code_links_nothing_and_says_so(localnet, bot):
    world = make_world(localnet)
    creator = world.subscription.bot.creator
    expired = telegram_links.issue_link_code(creator.address, now=timezone.now() - timedelta(hours=2))
    code = telegram_links.issue_link_code(creator.address)
    bot.user_sends(1, f"/start {code.code}")
    bot.user_sends(2, f"/start {code.code}")  # used already
    bot.user_sends(3, "/start not-a-code")
    bot.user_sends(4, f"/start {expired.code}")
    counts = telegram_links.read_bot_updates()
    assert (counts.updates, counts.linked, counts.refused) == (4, 1, 3)
    assert CreatorWallet.objects.get(pk=creator.pk).telegram_chat_id == "1"
    notifications.deliver_due()
    refusals = [m for m in bot.requests if m["chat_id"] in ("2", "3", "4")]
    assert len(refusals) == 3 and all("unknown, used or expired" in m["text"] for m in refusals)


def test_a_new_code_replaces_the_old_one(localnet, bot):
    world = make_world(localnet)
    creator = world.subscription.bot.creator
    old = telegram_links.issue_link_code(creator.address)
    telegram_links.issue_link_code(creator.address)
    bot.user_sends(9, f"/start {old.code}")
    assert telegram_links.read_bot_updates().linked == 0


def test_choices_decide_which_notices_a_linked_creator_gets(client, localnet, gateway, bot):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    creator = world.subscription.bot.creator
    CreatorWallet.objects.filter(pk=creator.pk).update(telegram_chat_id="777")
    assert notifications.queue_creator_notices() == 1  # the IOU opened: a debts notice by default
    message = OutboxMessage.objects.get(dedupe_key=f"iou:{iou.pk}:opened")
    assert "4 USDC" in message.text and "owed to you" in message.text
    sign_in_as(client, creator.address)
    panel = client.post("/creator/telegram/notices/", {"payouts": "on"}, **HTMX).content.decode()
    assert "Notice choices saved." in panel and 'name="debts" checked' not in panel
    notices = CreatorNotices.objects.get(creator=creator)
    assert (notices.payouts, notices.debts, notices.delinquency) == (True, False, False)
    from profitshare.services.ious import void_iou

    void_iou(iou.pk, reason="forgiven", actor="admin:ops")
    assert notifications.queue_creator_notices() == 0  # debts off: no voided notice
    telegram_links.set_notices(creator.address, debts=True)
    assert notifications.queue_creator_notices() == 1  # the voided notice now
    assert "voided by an admin: forgiven" in OutboxMessage.objects.get(dedupe_key=f"iou:{iou.pk}:voided").text


def test_payout_notices_can_be_turned_off(localnet, gateway, bot):
    from profitshare.services.engine import process_distribution

    world = make_world(localnet)
    creator = world.subscription.bot.creator
    CreatorWallet.objects.filter(pk=creator.pk).update(telegram_chat_id="777")
    telegram_links.set_notices(creator.address, payouts=False)
    process_distribution(world.close(50_000_000).distribution.pk, gateway=gateway)
    assert notifications.queue_payout_notices() == 0
    telegram_links.set_notices(creator.address, payouts=True)
    assert notifications.queue_payout_notices() == 1


def test_unlink_and_bad_choices(client, localnet):
    world = make_world(localnet)
    creator = world.subscription.bot.creator
    CreatorWallet.objects.filter(pk=creator.pk).update(telegram_chat_id="777")
    with pytest.raises(InvalidInput):
        telegram_links.set_notices(creator.address, sms=True)
    with pytest.raises(InvalidInput):
        telegram_links.set_notices(creator.address, payouts="yes")
    assert not CreatorNotices.objects.exists()  # nothing written
    sign_in_as(client, creator.address)
    panel = client.post("/creator/telegram/unlink/", **HTMX).content.decode()
    assert "Telegram chat unlinked." in panel and "Link Telegram" in panel
    assert CreatorWallet.objects.get(pk=creator.pk).telegram_chat_id == ""


def test_only_a_signed_in_creator_can_link(client, localnet):
    assert client.post("/creator/telegram/code/").status_code == 302  # to sign-in
    sign_in_as(client, "11111111111111111111111111111111")  # a wallet that is no creator
    assert client.post("/creator/telegram/code/", **HTMX).status_code == 404
    assert not TelegramLinkCode.objects.exists()


def test_an_unreachable_bot_api_changes_nothing(localnet, settings):
    from profitshare.models import TelegramUpdateOffset

    world = make_world(localnet)
    code = telegram_links.issue_link_code(world.subscription.bot.creator.address)
    settings.QV_TELEGRAM_BOT_TOKEN = TOKEN
    settings.QV_TELEGRAM_API_URL = "http://127.0.0.1:9"  # nothing listens
    assert telegram_links.read_bot_updates() == telegram_links.UpdateCounts()
    code.refresh_from_db()
    assert code.used_at is None and TelegramUpdateOffset.objects.get().offset == 0
