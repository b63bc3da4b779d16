"""TTL (docs/design.md, "TTL frees the subscriber, not the debt"): an open IOU past its time
limit becomes expired, stops blocking the subscriber, stays owed and is still collected; admins are told by rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from profitshare.models import IOU, Alert, AuditEvent, DistributionStatus, IouStatus
from profitshare.models.outbox import OutboxMessage
from profitshare.services import ious
from profitshare.services.engine import retry_iou
from profitshare.services.guards import guard
from profitshare.services.ttl import expire_due_ious
from profitshare.tasks import expire_ious_task
from tests.world import owe_for_lack_of_sol

pytestmark = pytest.mark.django_db(transaction=True)


def test_expired_iou_stops_blocking_stays_owed_and_is_collected(localnet, gateway, settings):
    settings.QV_TELEGRAM_ADMIN_CHAT_IDS = ["-100admins"]
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    sub_id = world.subscription.subscription_id
    assert guard(sub_id).can_withdraw is False

    assert expire_due_ious(iou.expires_at - timedelta(seconds=1)) == []  # not yet
    later = iou.expires_at + timedelta(seconds=1)
    assert expire_due_ious(later) == [iou.pk]
    assert expire_due_ious(later) == []  # idempotent

    iou.refresh_from_db()
    assert (iou.status, iou.remaining) == (IouStatus.EXPIRED, 4_000_000)
    answer = guard(sub_id)
    assert (answer.can_withdraw, answer.blocking_owed, answer.owed) == (True, 0, 4_000_000)
    event = AuditEvent.objects.get(entity="iou", entity_id=str(iou.pk), to_status="expired")
    assert (event.from_status, event.actor, event.data["remaining"]) == ("open", "schedule:iou-ttl", 4_000_000)
    alert = Alert.objects.get(kind="iou_expired")
    assert (alert.severity, alert.amount, alert.data["iou"]) == ("warning", 4_000_000, iou.pk)
    message = OutboxMessage.objects.get(chat_id="-100admins", dedupe_key=f"alert:{alert.pk}:-100admins")
    assert "iou_expired" in message.text and "4 USDC" in message.text

    # still owed: once the subscriber has SOL again the retry sweep collects it
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    assert ious.claim_due_ious(now=later + timedelta(hours=1)) == [iou.pk]
    retry_iou(iou.pk, gateway=gateway)
    iou.refresh_from_db()
    distribution.refresh_from_db()
    assert (iou.status, iou.paid_amount) == (IouStatus.PAID, 4_000_000)
    assert (distribution.status, distribution.paid, distribution.owed) == (DistributionStatus.PAID, 4_000_000, 0)
    assert world.creator_usdc() == 4_000_000


def test_expired_iou_that_falls_short_again_stays_expired(localnet, gateway):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    IOU.objects.filter(pk=iou.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_due_ious() == [iou.pk]
    assert ious.claim_due_ious(now=timezone.now() + timedelta(hours=1)) == [iou.pk]
    retry_iou(iou.pk, gateway=gateway)  # still no SOL
    iou.refresh_from_db()
    assert (iou.status, iou.remaining, iou.attempts) == (IouStatus.EXPIRED, 4_000_000, 1)


def test_processing_ious_are_left_to_the_engine(localnet, gateway):
    _, _, iou = owe_for_lack_of_sol(localnet, gateway)
    assert ious.claim_iou(iou.pk, actor="test")
    assert expire_due_ious(iou.expires_at + timedelta(days=1)) == []
    iou.refresh_from_db()
    assert iou.status == IouStatus.PROCESSING
    assert not Alert.objects.filter(kind="iou_expired").exists()


def test_only_an_admin_voids_an_expired_debt(localnet, gateway):
    _, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    expire_due_ious(iou.expires_at)
    ious.void_iou(iou.pk, reason="subscriber left, written off", actor="admin:alice")
    iou.refresh_from_db()
    distribution.refresh_from_db()
    assert iou.status == IouStatus.VOIDED
    assert (distribution.owed, distribution.voided) == (0, 4_000_000)


def test_alert_rules_come_from_settings(localnet, gateway, settings):
    settings.QV_TELEGRAM_ADMIN_CHAT_IDS = ["-100admins"]
    settings.QV_ALERT_RULES = {**settings.QV_ALERT_RULES, "iou_expired": {"severity": "critical", "notify": False}}
    _, _, iou = owe_for_lack_of_sol(localnet, gateway)
    before = OutboxMessage.objects.count()
    expire_due_ious(iou.expires_at)
    assert Alert.objects.get(kind="iou_expired").severity == "critical"
    assert OutboxMessage.objects.count() == before  # notify off: stored, no message


def test_the_scheduled_task_expires_what_is_due_now(localnet, gateway):
    _, _, iou = owe_for_lack_of_sol(localnet, gateway)
    IOU.objects.filter(pk=iou.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_ious_task() == 1
    assert IOU.objects.get(pk=iou.pk).status == IouStatus.EXPIRED


def test_an_expired_referral_legs_iou_names_whom_it_is_still_owed_to(localnet, gateway, splits):
    world = splits["world"](lamports=1_000_000)  # every leg owed for lack of SOL
    distribution = world.close(100_000_000).distribution
    from profitshare.services.engine import process_distribution

    process_distribution(distribution.pk, gateway=gateway)
    referral = IOU.objects.get(distribution=distribution, leg__role="referral_2")
    expire_due_ious(referral.expires_at + timedelta(seconds=1))
    alert = Alert.objects.get(kind="iou_expired", data__iou=referral.pk)
    level2 = str(splits["referral_2"])
    assert f"{referral.remaining} still owed to {level2} (referral_2)" in alert.subject
    assert alert.data["role"] == "referral_2"
    creator = Alert.objects.get(kind="iou_expired", data__role="creator")
    assert f"still owed to {world.creator} (creator)" in creator.subject
