"""Each webhook event type is written by the state change it reports, in that change's
transaction, and reaches a real receiving server with the ids, base-unit amounts, reason codes
and signatures a platform needs; a change that rolls back emits nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from solders.keypair import Keypair

from profitshare.models import (
    IOU,
    IouStatus,
    PayoutAttempt,
    SubscriptionStatus,
    WebhookDelivery,
    WebhookEvent,
)
from profitshare.services import ious, ttl, webhooks
from profitshare.services.bots import publish_bot
from profitshare.services.delinquency import detect_delinquency
from profitshare.services.engine import process_distribution, retry_iou
from profitshare.services.referrals import link_referral
from profitshare.services.webhook_delivery import deliver_due
from tests.world import fund_payout, make_world, owe_for_lack_of_sol, pay_legs

pytestmark = pytest.mark.django_db(transaction=True)


def has(data: dict, **expected) -> bool:
    """Whether ``data`` holds every ``expected`` key with that value."""
    return {k: data.get(k) for k in expected} == expected


def delivered(receiver) -> list[dict]:
    """Deliver what is due now; the bodies the receiver got, in order."""
    deliver_due(drain_seconds=5)
    return [r.json for r in receiver.requests]


def test_a_payout_emits_distribution_paid_with_its_signature(localnet, gateway, receiver):
    world = make_world(localnet)
    distribution = process_distribution(world.close(50_000_000).distribution.pk, gateway=gateway)
    [body] = delivered(receiver)
    signature = distribution.attempts_log.get().signature
    sub = world.subscription
    assert body["type"] == "distribution.paid"
    assert body["data"] == {
        "distribution_id": distribution.pk, "close_id": distribution.close.close_id,
        "subscription_id": sub.subscription_id, "bot_id": sub.bot.bot_id, "creator_wallet": str(world.creator),
        "amount": 5_000_000, "legs": [{"role": "creator", "wallet": str(world.creator), "amount": 5_000_000}],
        "paid": 5_000_000, "owed": 0, "status": "paid", "signature": signature,
        "slot": distribution.attempts_log.get().slot, "iou_id": None,
    }
    assert world.creator_usdc() == 5_000_000  # what the event says landed, landed
    assert WebhookDelivery.objects.get().status == "delivered"


def test_a_payout_of_three_legs_says_whom_it_paid(localnet, gateway, receiver, settings, django_assert_num_queries):
    """A real payout of a split share (creator, platform, level 1 in one transaction), applied
    as the engine applies it: the event lists each leg the attempt paid, in transfer order, its
    role read in the one query of the event's facts."""
    treasury = str(Keypair().pubkey())
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = 1_000, treasury
    settings.QV_REFERRAL_BPS = (500, 200, 100)
    world = make_world(localnet)
    referrer = str(Keypair().pubkey())
    link_referral(world.subscription.bot.creator.address, referrer)
    dist = world.close(50_000_000, realize=False).distribution
    attempt = pay_legs(gateway, world, dist, fund_payout(localnet, world, dist))
    dist.refresh_from_db()
    with transaction.atomic(), django_assert_num_queries(3):  # the facts, the events, the deliveries
        webhooks.payouts_landed([attempt], {dist.pk: dist}, [])
    [body] = delivered(receiver)
    assert body["type"] == "distribution.paid"
    assert has(body["data"], distribution_id=dist.pk, amount=5_000_000, paid=5_000_000, owed=0, status="paid",
               signature=attempt.signature, creator_wallet=str(world.creator))
    assert body["data"]["legs"] == [
        {"role": "creator", "wallet": str(world.creator), "amount": 4_250_000},
        {"role": "platform", "wallet": treasury, "amount": 500_000},
        {"role": "referral_1", "wallet": referrer, "amount": 250_000},
    ]
    assert sum(leg["amount"] for leg in body["data"]["legs"]) == body["data"]["amount"]


def test_an_attempt_recorded_without_legs_paid_the_creator(localnet, gateway, receiver):
    """None is, after the data migration; one that is still says whom it paid."""
    world = make_world(localnet)
    dist = world.close(20_000_000, realize=False).distribution
    attempt = pay_legs(gateway, world, dist, fund_payout(localnet, world, dist))
    PayoutAttempt.objects.filter(pk=attempt.pk).update(legs=[])
    attempt.refresh_from_db()
    dist.refresh_from_db()
    with transaction.atomic():
        webhooks.payouts_landed([attempt], {dist.pk: dist}, [])
    [body] = delivered(receiver)
    assert body["data"]["legs"] == [{"role": "creator", "wallet": str(world.creator), "amount": 2_000_000}]


def test_an_iou_emits_distribution_owed_and_iou_opened_with_the_reason(localnet, gateway, receiver):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    owed, opened = delivered(receiver)
    assert (owed["type"], opened["type"]) == ("distribution.owed", "iou.opened")
    assert has(owed["data"], distribution_id=distribution.pk, owed=4_000_000, paid=0, status="owed",
               reason="insufficient_sol", iou_id=iou.pk)
    assert opened["data"]["amount"] == 4_000_000 and opened["data"]["reason"] == "insufficient_sol"
    assert opened["data"]["subscription_id"] == world.subscription.subscription_id
    assert opened["data"]["expires_at"] == iou.expires_at.isoformat()


def test_a_retry_falling_short_again_emits_nothing_new(localnet, gateway, receiver):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    [claimed] = ious.claim_due_ious(now=timezone.now() + timedelta(hours=1))
    retry_iou(claimed, gateway=gateway)
    assert IOU.objects.get(pk=iou.pk).status == IouStatus.OPEN
    assert [e.type for e in WebhookEvent.objects.order_by("id")] == ["distribution.owed", "iou.opened"]


def test_delinquency_then_payment_emit_delinquent_paid_and_cleared_in_order(localnet, gateway, receiver):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    sub = world.subscription
    moved = localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    detect_delinquency(gateway=gateway)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    [claimed] = ious.claim_due_ious(now=timezone.now() + timedelta(hours=1))
    retry_iou(claimed, gateway=gateway)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    bodies = delivered(receiver)
    assert [b["type"] for b in bodies] == [
        "distribution.owed", "iou.opened", "subscription.delinquent", "distribution.paid", "iou.paid",
        "subscription.cleared",
    ]
    delinquent, paid, iou_paid, cleared = bodies[2:]
    assert delinquent["data"]["amount"] == 100_000_000 and delinquent["data"]["signature"] == moved["signature"]
    assert delinquent["data"]["reason"] == "funds_moved_out"
    signature = distribution.attempts_log.get().signature
    assert (paid["data"]["iou_id"], paid["data"]["signature"], paid["data"]["amount"]) == (iou.pk, signature, 4_000_000)
    assert has(iou_paid["data"], iou_id=iou.pk, amount=4_000_000, paid_amount=4_000_000, signature=signature,
               reason="insufficient_sol")
    assert cleared["data"] == {"subscription_id": sub.subscription_id, "reason": "debts_paid"}


def test_voiding_emits_iou_voided_with_the_admins_reason(localnet, gateway, receiver):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    ious.void_iou(iou.pk, reason="creator forgave it", actor="admin:ops")
    voided = delivered(receiver)[-1]
    assert voided["type"] == "iou.voided"
    assert has(voided["data"], iou_id=iou.pk, voided=4_000_000, void_reason="creator forgave it",
               voided_by="admin:ops")


def test_the_ttl_emits_iou_expired_with_what_is_still_owed(localnet, gateway, receiver):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    assert ttl.expire_due_ious(now=iou.expires_at) == [iou.pk]
    expired = delivered(receiver)[-1]
    assert expired["type"] == "iou.expired"
    assert (expired["data"]["iou_id"], expired["data"]["remaining"]) == (iou.pk, 4_000_000)
    assert expired["data"]["expires_at"] == iou.expires_at.isoformat()


def test_a_rate_increase_emits_bot_terms_scheduled_per_subscription(localnet, gateway, receiver, settings):
    settings.QV_FEE_CHANGE_TIMELOCK_DAYS = 7
    world = make_world(localnet, bot__profit_share_bps=500)
    bot = world.subscription.bot
    before = timezone.now()
    publish_bot(bot_id=bot.bot_id, creator_wallet=bot.creator.address, name=bot.name, profit_share_bps=750,
                policy="high_water_mark", actor="api:platform")
    [body] = delivered(receiver)
    data = body["data"]
    assert body["type"] == "bot.terms_scheduled"
    assert {k: data[k] for k in ("bot_id", "subscription_id", "old_bps", "new_bps", "old_policy", "new_policy")} == {
        "bot_id": bot.bot_id, "subscription_id": world.subscription.subscription_id, "old_bps": 500, "new_bps": 750,
        "old_policy": "per_trade", "new_policy": "high_water_mark"}
    effective = timezone.datetime.fromisoformat(data["effective_at"])
    assert timedelta(days=7) <= effective - before < timedelta(days=7, minutes=1)


def test_a_rate_decrease_applies_at_once_and_schedules_nothing(localnet, gateway, receiver):
    world = make_world(localnet, bot__profit_share_bps=500)
    bot = world.subscription.bot
    publish_bot(bot_id=bot.bot_id, creator_wallet=bot.creator.address, name=bot.name, profit_share_bps=250,
                policy="per_trade", actor="api:platform")
    assert not WebhookEvent.objects.exists()


def test_a_rolled_back_change_emits_nothing(localnet, gateway, receiver):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    before = WebhookEvent.objects.count()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        ious.void_iou(iou.pk, reason="will roll back", actor="admin:ops")
        assert WebhookEvent.objects.filter(type="iou.voided").exists()  # written with the change...
        raise Abort
    assert IOU.objects.get(pk=iou.pk).status == IouStatus.OPEN
    assert WebhookEvent.objects.count() == before  # ...and gone with it
    assert "iou.voided" not in [b["type"] for b in delivered(receiver)]


def test_without_endpoints_nothing_is_written(localnet, gateway, settings):
    settings.QV_WEBHOOK_URLS = []
    owe_for_lack_of_sol(localnet, gateway)
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


def test_each_endpoint_gets_its_own_delivery(localnet, gateway, receiver, settings):
    from tests.webhooks.conftest import Receiver

    second = Receiver()
    try:
        settings.QV_WEBHOOK_URLS = [receiver.url, second.url]
        owe_for_lack_of_sol(localnet, gateway)
        assert WebhookDelivery.objects.count() == 4
        deliver_due(drain_seconds=5)
        assert receiver.types() == second.types() == ["distribution.owed", "iou.opened"]
        assert [r.event_id for r in receiver.requests] == [r.event_id for r in second.requests]
    finally:
        second.stop()
