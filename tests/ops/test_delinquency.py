"""Delinquency (seed 001 #5): funds moved out on-chain while owing mark the subscription
delinquent (amount, signature, alert); our own settles, withdraws and payouts never do; it
clears when the debts are paid."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from solders.keypair import Keypair

from profitshare.chain.errors import RpcUnavailable
from profitshare.models import IOU, Alert, AuditEvent, IouStatus, SubscriptionStatus
from profitshare.models.ops import DelinquencyWatch
from profitshare.services import ious
from profitshare.services.delinquency import detect_delinquency
from profitshare.services.engine import process_distribution, retry_iou
from profitshare.services.guards import guard
from profitshare.tasks import detect_delinquency_task
from tests.chain.gateway_support import make_gateway
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)


def owing_world(localnet, gateway):
    """A subscription owing 4 USDC (its agent lacks SOL), already watched."""
    world = make_world(localnet, lamports=1_000_000)
    process_distribution(world.close(40_000_000).distribution.pk, gateway=gateway)
    assert detect_delinquency(gateway=gateway)["started"] == 1
    return world


def status(world) -> str:
    world.subscription.refresh_from_db()
    return world.subscription.status


def test_a_drift_withdrawal_behind_our_back_marks_delinquent(localnet, gateway):
    world = owing_world(localnet, gateway)
    sub = world.subscription
    elsewhere = str(Keypair().pubkey())
    moved = localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, sub.drift_subaccount_id, 300_000_000, elsewhere)
    counts = detect_delinquency(gateway=gateway)
    assert counts["delinquent"] == 1
    assert status(world) == SubscriptionStatus.DELINQUENT
    answer = guard(sub.subscription_id)
    assert answer.delinquent and not answer.can_withdraw
    event = AuditEvent.objects.get(entity="subscription", entity_id=sub.subscription_id, to_status="delinquent")
    assert (event.data["amount"], event.data["signature"]) == (300_000_000, moved["signature"])
    assert event.data["recipients"] == {elsewhere: 300_000_000}
    alert = Alert.objects.get(kind="delinquency")
    assert (alert.severity, alert.amount, alert.data["signature"]) == ("critical", 300_000_000, moved["signature"])
    assert detect_delinquency(gateway=gateway)["delinquent"] == 0  # marked once


def test_draining_the_agent_token_account_marks_delinquent(localnet, gateway):
    world = owing_world(localnet, gateway)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 50_000_000)
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), 2_000_000)
    drain = gateway.build_payout(world.agent, str(Keypair().pubkey()), 2_000_000, reference="mine now")
    gateway.send(drain)
    gateway.confirm(drain.signature, drain.last_valid_block_height)
    assert detect_delinquency(gateway=gateway)["delinquent"] == 1
    assert status(world) == SubscriptionStatus.DELINQUENT
    assert AuditEvent.objects.get(entity="subscription", to_status="delinquent").data["signature"] == drain.signature


def test_our_own_settle_withdraw_and_payout_are_not_outflows(localnet, gateway):
    world = owing_world(localnet, gateway)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    paid = world.close(50_000_000).distribution
    process_distribution(paid.pk, gateway=gateway)  # settle + withdraw + transfer, while IOU 1 is open
    paid.refresh_from_db()
    assert paid.paid == 5_000_000
    counts = detect_delinquency(gateway=gateway)
    assert (counts["watched"], counts["delinquent"]) == (1, 0)
    assert status(world) == SubscriptionStatus.ACTIVE
    assert DelinquencyWatch.objects.get().last_signature  # the transactions were examined


def test_delinquency_clears_when_the_debt_is_paid(localnet, gateway):
    world = owing_world(localnet, gateway)
    sub = world.subscription
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    detect_delinquency(gateway=gateway)
    assert status(world) == SubscriptionStatus.DELINQUENT
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    [iou_id] = ious.claim_due_ious(now=timezone.now() + timedelta(hours=1))
    retry_iou(iou_id, gateway=gateway)
    assert IOU.objects.get(pk=iou_id).status == IouStatus.PAID
    assert status(world) == SubscriptionStatus.ACTIVE
    assert detect_delinquency(gateway=gateway)["stopped"] == 1  # nothing owed: no watch
    assert not DelinquencyWatch.objects.exists()


def test_moves_before_the_watch_started_do_not_count(localnet, gateway):
    world = make_world(localnet, lamports=1_000_000)
    sub = world.subscription
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    process_distribution(world.close(40_000_000).distribution.pk, gateway=gateway)
    localnet.rpc("localnet_advanceSlots", 1)
    assert detect_delinquency(gateway=gateway)["started"] == 1
    assert detect_delinquency(gateway=gateway)["delinquent"] == 0
    assert status(world) == SubscriptionStatus.ACTIVE


def test_expired_debts_are_not_watched(localnet, gateway):
    world = owing_world(localnet, gateway)
    IOU.objects.update(status=IouStatus.EXPIRED)
    sub = world.subscription
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    assert detect_delinquency(gateway=gateway) == {"watched": 0, "started": 0, "delinquent": 0, "stopped": 1}
    assert status(world) == SubscriptionStatus.ACTIVE


def test_an_unreachable_rpc_changes_nothing(localnet, gateway):
    world = owing_world(localnet, gateway)
    sub = world.subscription
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    dead = make_gateway(type("Dead", (), {"url": "http://127.0.0.1:9"})(), max_attempts=1)
    with pytest.raises(RpcUnavailable):
        detect_delinquency(gateway=dead)
    assert status(world) == SubscriptionStatus.ACTIVE
    assert DelinquencyWatch.objects.get().last_signature == ""
    assert detect_delinquency(gateway=gateway)["delinquent"] == 1  # the next run catches it


def test_the_scheduled_task_uses_the_configured_node(localnet, gateway):
    world = owing_world(localnet, gateway)
    sub = world.subscription
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    assert detect_delinquency_task()["delinquent"] == 1
