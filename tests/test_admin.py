"""Django admin: every model has a changelist and a change page a superuser can read; nothing
can be added, changed or deleted there, and key material is never shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from solders.keypair import Keypair

from profitshare.models import (
    IOU,
    AgentWallet,
    Alert,
    AuditEvent,
    CreatorWallet,
    Distribution,
    DistributionStatus,
    PayoutAttempt,
    PublishedBot,
    Referral,
    Subscription,
    TradeClose,
)
from profitshare.services.bots import publish_bot
from profitshare.services.intake import CloseReport, record_close
from profitshare.services.referrals import link_referral
from profitshare.services.subscriptions import create_subscription

pytestmark = pytest.mark.django_db

MODELS = [
    CreatorWallet, AgentWallet, PublishedBot, Subscription, TradeClose, Distribution, IOU, PayoutAttempt,
    Alert, AuditEvent, Referral,
]


@pytest.fixture
def rows():
    """One row of every model, made by the services where they exist."""
    publish_bot(
        bot_id="bot-1", creator_wallet=str(Keypair().pubkey()), name="Momentum", profit_share_bps=1_000,
        policy="per_trade", actor="test",
    )
    sub = create_subscription(
        subscription_id="sub-1", bot_id="bot-1", subscriber_wallet=str(Keypair().pubkey()),
        drift_subaccount_id=0, actor="test",
    ).subscription
    result = record_close(
        CloseReport("close-1", "sub-1", 0, 40_000_000, "full", datetime(2026, 1, 2, tzinfo=UTC)), actor="test"
    )
    dist = result.distribution
    Distribution.objects.filter(pk=dist.pk).update(status=DistributionStatus.OWED)
    now = timezone.now()
    iou = IOU.objects.create(
        distribution=dist, subscription=sub, creator=dist.creator, amount=4_000_000, reason="insufficient_sol",
        next_retry_at=now, expires_at=now + timedelta(days=7),
    )
    PayoutAttempt.objects.create(
        distribution=dist, iou=iou, agent_wallet=sub.agent_wallet, amount=4_000_000, signature="5" * 88,
        raw_transaction=b"RAW-TRANSACTION-BYTES", blockhash="1" * 32, last_valid_block_height=150,
        destination_owner=dist.creator.address, destination_ata=str(Keypair().pubkey()),
    )
    Alert.objects.create(kind="iou_created", subject="IOU for test", amount=4_000_000)
    link_referral(dist.creator.address, str(Keypair().pubkey()), actor="test")
    return sub


@pytest.fixture
def staff_client(client):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests")
    assert client.login(username="root", password="pw-for-tests")
    return client


def url(model, view, *args):
    return reverse(f"admin:profitshare_{model._meta.model_name}_{view}", args=args)


def test_every_model_is_registered():
    assert set(MODELS) <= set(admin.site._registry)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_page_are_readable_and_read_only(staff_client, rows, model):
    obj = model.objects.order_by("pk").first()
    assert obj is not None
    listing = staff_client.get(url(model, "changelist"))
    assert listing.status_code == 200
    assert url(model, "add") not in listing.content.decode()  # no add button
    assert staff_client.get(url(model, "changelist") + "?q=1").status_code == 200  # search works
    page = staff_client.get(url(model, "change", obj.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert url(model, "delete", obj.pk) not in html
    assert staff_client.get(url(model, "add")).status_code == 403
    assert staff_client.get(url(model, "delete", obj.pk)).status_code == 403
    assert staff_client.post(url(model, "change", obj.pk), {}).status_code == 403


def test_filters_render(staff_client, rows):
    assert staff_client.get(url(IOU, "changelist") + "?status__exact=open").status_code == 200
    assert staff_client.get(url(Distribution, "changelist") + "?status__exact=owed").status_code == 200
    assert staff_client.get(url(AuditEvent, "changelist") + "?entity=close").status_code == 200


def test_secrets_and_raw_bytes_are_never_shown(staff_client, rows):
    agent = AgentWallet.objects.get()
    html = staff_client.get(url(AgentWallet, "change", agent.pk)).content.decode()
    assert agent.pubkey in html
    assert bytes(agent.encrypted_secret).decode() not in html
    assert "encrypted" not in html.lower()
    attempt = PayoutAttempt.objects.get()
    html = staff_client.get(url(PayoutAttempt, "change", attempt.pk)).content.decode()
    assert attempt.signature in html
    assert "RAW-TRANSACTION-BYTES" not in html and "Raw transaction" not in html


def test_audit_events_have_no_bulk_actions(staff_client, rows):
    html = staff_client.get(url(AuditEvent, "changelist")).content.decode()
    assert 'name="action"' not in html
    assert AuditEvent.objects.count() >= 3
