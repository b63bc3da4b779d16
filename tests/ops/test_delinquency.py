"""Delinquency (docs/design.md, "Delinquency"): funds moved out on-chain while owing — USDC
out of the agent's token account or Drift subaccount, SOL out of the agent wallet — mark the subscription
delinquent (amount, lamports, signature, alert), from the slot the IOU opened at; our own
settles, withdraws and payouts never do; it clears when the debts are paid."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from profitshare.chain.errors import RpcUnavailable
from profitshare.models import IOU, Alert, AuditEvent, IouStatus, SubscriptionStatus
from profitshare.models.delinquency import DelinquencyWatch, WatchBaseline
from profitshare.services import ious
from profitshare.services.delinquency import detect_delinquency
from profitshare.services.engine import process_distribution, retry_iou
from profitshare.services.guards import guard
from profitshare.services.subscription_end import end_subscription
from profitshare.services.ttl import expire_due_ious
from profitshare.tasks import detect_delinquency_task
from tests.chain.gateway_support import confirm, make_gateway, send
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)


def owing_world(localnet, gateway):
    """A subscription owing 4 USDC (its agent lacks SOL), watched since its IOU opened."""
    world = make_world(localnet, lamports=1_000_000)
    process_distribution(world.close(40_000_000).distribution.pk, gateway=gateway)
    assert DelinquencyWatch.objects.get(subscription=world.subscription).baseline == WatchBaseline.IOU_OPENED
    return world


def system_transfer(localnet, signer: Keypair, to: str, lamports: int) -> str:
    """A plain System Program transfer signed by ``signer`` (not one of ours); returns its
    signature once landed."""
    from solders.pubkey import Pubkey

    blockhash = localnet.rpc("getLatestBlockhash", {"commitment": "confirmed"})["value"]["blockhash"]
    ix = transfer(TransferParams(from_pubkey=signer.pubkey(), to_pubkey=Pubkey.from_string(to), lamports=lamports))
    tx = Transaction([signer], Message.new_with_blockhash([ix], signer.pubkey(), Hash.from_string(blockhash)),
                     Hash.from_string(blockhash))
    signature = localnet.rpc("sendTransaction", base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"})
    status = localnet.rpc("getSignatureStatuses", [signature])["value"][0]
    assert status and status["err"] is None
    return signature


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
    send(gateway, drain)
    confirm(gateway, drain)
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


def delinquent_world(localnet, gateway):
    """``owing_world`` whose subscriber then moved 100 USDC out of Drift: marked delinquent."""
    world = owing_world(localnet, gateway)
    sub = world.subscription
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    detect_delinquency(gateway=gateway)
    assert status(world) == SubscriptionStatus.DELINQUENT
    return world


def pay_the_debt(localnet, gateway, world) -> None:
    """The subscriber tops up SOL and the retry pays the one IOU."""
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    [iou_id] = ious.claim_due_ious(now=timezone.now() + timedelta(hours=1))
    retry_iou(iou_id, gateway=gateway)
    assert IOU.objects.get(pk=iou_id).status == IouStatus.PAID


def test_delinquency_clears_when_the_debt_is_paid(localnet, gateway):
    world = delinquent_world(localnet, gateway)
    pay_the_debt(localnet, gateway, world)
    assert status(world) == SubscriptionStatus.ACTIVE
    assert detect_delinquency(gateway=gateway)["stopped"] == 1  # nothing owed: no watch
    assert not DelinquencyWatch.objects.exists()


def test_moves_before_the_iou_opened_do_not_count(localnet, gateway):
    world = make_world(localnet, lamports=1_000_000)
    sub = world.subscription
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    localnet.rpc("localnet_advanceSlots", 1)
    process_distribution(world.close(40_000_000).distribution.pk, gateway=gateway)
    assert detect_delinquency(gateway=gateway)["delinquent"] == 0
    assert status(world) == SubscriptionStatus.ACTIVE


def test_the_watch_starts_at_the_slot_the_iou_opened(localnet, gateway):
    world = make_world(localnet, lamports=1_000_000)
    before = localnet.rpc("getSlot")
    process_distribution(world.close(40_000_000).distribution.pk, gateway=gateway)
    watch = DelinquencyWatch.objects.get(subscription=world.subscription)
    iou = IOU.objects.get(subscription=world.subscription)
    assert (watch.baseline, watch.since_slot, watch.opened_at) == (WatchBaseline.IOU_OPENED, before, iou.created_at)
    counts = detect_delinquency(gateway=gateway)
    assert (counts["watched"], counts["started"], counts["delinquent"]) == (1, 0, 0)


def test_a_move_seconds_after_the_iou_opened_is_caught_on_the_first_scan(localnet, gateway):
    world = make_world(localnet, lamports=1_000_000)
    sub = world.subscription
    process_distribution(world.close(40_000_000).distribution.pk, gateway=gateway)
    elsewhere = str(Keypair().pubkey())
    moved = localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 250_000_000, elsewhere)
    localnet.rpc("localnet_advanceSlots", 150)  # a minute passes before the schedule runs
    counts = detect_delinquency(gateway=gateway)
    assert (counts["started"], counts["delinquent"]) == (0, 1)
    assert status(world) == SubscriptionStatus.DELINQUENT
    event = AuditEvent.objects.get(entity="subscription", entity_id=sub.subscription_id, to_status="delinquent")
    assert (event.data["amount"], event.data["signature"], event.data["lamports"]) == (250_000_000, moved["signature"], 0)


def test_sol_drained_by_a_system_transfer_signed_by_the_agent_key_marks_delinquent(localnet, gateway):
    world = owing_world(localnet, gateway)
    sub = world.subscription
    localnet.rpc("requestAirdrop", sub.agent_wallet.pubkey, 3_000_000_000)
    elsewhere = str(Keypair().pubkey())
    drained = system_transfer(localnet, world.agent, elsewhere, 2_500_000_000)
    counts = detect_delinquency(gateway=gateway)
    assert counts["delinquent"] == 1
    assert status(world) == SubscriptionStatus.DELINQUENT
    event = AuditEvent.objects.get(entity="subscription", entity_id=sub.subscription_id, to_status="delinquent")
    assert (event.data["signature"], event.data["amount"], event.data["lamports"]) == (drained, 0, 2_500_000_000)
    assert event.data["sol_recipients"] == {elsewhere: 2_500_000_000}
    alert = Alert.objects.get(kind="delinquency")
    assert (alert.data["lamports"], alert.data["signature"]) == (2_500_000_000, drained)


def test_a_transaction_that_only_costs_its_fee_is_not_an_outflow(localnet, gateway):
    world = owing_world(localnet, gateway)
    localnet.rpc("requestAirdrop", world.subscription.agent_wallet.pubkey, 1_000_000_000)
    system_transfer(localnet, world.agent, world.subscription.agent_wallet.pubkey, 1_000)  # to itself
    counts = detect_delinquency(gateway=gateway)
    assert counts["delinquent"] == 0 and counts["signatures"] >= 2  # the airdrop and the self-transfer at least
    assert status(world) == SubscriptionStatus.ACTIVE


def test_an_unreachable_rpc_when_the_iou_opens_leaves_the_watch_to_the_schedule(localnet, gateway):
    """The baseline slot is read through the payout's own gateway, once, briefly; when the RPC
    is unreachable the IOU still opens (``rpc_unavailable``) and the schedule starts the watch."""
    from profitshare.chain.drift.driftpy_adapter import DriftpyAdapter
    from profitshare.chain.gateway import ChainGateway
    from tests.chain.gateway_support import USDC, make_pool

    world = make_world(localnet)
    pool = make_pool("http://127.0.0.1:9", max_attempts=1)
    dead = ChainGateway(pool, usdc_mint=USDC, drift=DriftpyAdapter(pool), confirm_timeout=0.2)
    process_distribution(world.close(40_000_000).distribution.pk, gateway=dead)
    assert IOU.objects.get(subscription=world.subscription).reason == "rpc_unavailable"
    assert not DelinquencyWatch.objects.exists()
    slot = localnet.rpc("getSlot")
    counts = detect_delinquency(gateway=gateway)
    assert (counts["started"], counts["delinquent"]) == (1, 0)
    watch = DelinquencyWatch.objects.get()
    assert (watch.baseline, watch.since_slot) == (WatchBaseline.WATCH_STARTED, slot)
    sub = world.subscription
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    assert detect_delinquency(gateway=gateway)["delinquent"] == 1


def test_each_scan_reads_only_newer_transactions_and_pages_through_many(localnet, gateway, settings):
    world = owing_world(localnet, gateway)
    sub = world.subscription
    settings.QV_CHAIN_SIGNATURE_LIMIT = 2  # pages of two signatures
    moved = localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 1_000_000, str(Keypair().pubkey()))
    for _ in range(4):  # newer transactions that move nothing out, burying the outflow past one page
        localnet.rpc("requestAirdrop", sub.agent_wallet.pubkey, 1_000)
    counts = detect_delinquency(gateway=gateway)
    assert counts["signatures"] >= 5 and counts["delinquent"] == 1  # the outflow and the four airdrops at least
    event = AuditEvent.objects.get(entity="subscription", entity_id=sub.subscription_id, to_status="delinquent")
    assert event.data["signature"] == moved["signature"]
    watch = DelinquencyWatch.objects.get()
    assert watch.last_signature and watch.last_scan_at


def test_expired_debts_are_not_watched(localnet, gateway):
    world = owing_world(localnet, gateway)
    IOU.objects.update(status=IouStatus.EXPIRED)
    sub = world.subscription
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    assert detect_delinquency(gateway=gateway) == {"watched": 0, "started": 0, "delinquent": 0, "stopped": 1,
                                                   "signatures": 0}
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


def test_an_ended_subscription_that_moves_funds_out_while_owing_is_caught_and_stays_ended(localnet, gateway):
    world = owing_world(localnet, gateway)
    sub = world.subscription
    end_subscription(sub.subscription_id, actor="api:platform")
    assert status(world) == SubscriptionStatus.ENDED
    assert not guard(sub.subscription_id).delinquent
    moved = localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 250_000_000, str(Keypair().pubkey()))

    counts = detect_delinquency(gateway=gateway)

    assert (counts["watched"], counts["delinquent"]) == (1, 1)
    assert status(world) == SubscriptionStatus.ENDED
    assert DelinquencyWatch.objects.get(subscription=sub).outflow_signature == moved["signature"]
    answer = guard(sub.subscription_id)
    assert answer.delinquent and not answer.can_withdraw
    event = AuditEvent.objects.get(entity="subscription", entity_id=sub.subscription_id,
                                   reason__endswith="after the subscription ended")
    assert (event.from_status, event.to_status, event.data["amount"]) == ("ended", "ended", 250_000_000)
    alert = Alert.objects.get(kind="delinquency")
    assert (alert.amount, alert.data["ended"], alert.data["signature"]) == (250_000_000, True, moved["signature"])
    assert detect_delinquency(gateway=gateway)["watched"] == 0  # caught once: no longer scanned


def test_a_delinquent_subscription_that_ends_stays_caught_until_its_debt_is_paid(localnet, gateway):
    world = delinquent_world(localnet, gateway)
    sub = world.subscription
    end_subscription(sub.subscription_id, actor="api:platform")
    assert status(world) == SubscriptionStatus.ENDED
    assert guard(sub.subscription_id).delinquent
    assert detect_delinquency(gateway=gateway)["watched"] == 0

    pay_the_debt(localnet, gateway, world)

    assert status(world) == SubscriptionStatus.ENDED
    answer = guard(sub.subscription_id)
    assert not answer.delinquent and answer.can_withdraw
    cleared = AuditEvent.objects.get(entity="subscription", entity_id=sub.subscription_id, reason="debts paid")
    assert (cleared.from_status, cleared.to_status) == ("ended", "ended")
    assert detect_delinquency(gateway=gateway)["stopped"] == 1


def test_an_ended_subscription_that_owes_nothing_is_not_watched(localnet, gateway):
    world = make_world(localnet)
    end_subscription(world.subscription.subscription_id, actor="api:platform")
    localnet.rpc("localnet_driftTransferOut", world.subscription.agent_wallet.pubkey, 0, 100_000_000,
                 str(Keypair().pubkey()))
    assert detect_delinquency(gateway=gateway) == {"watched": 0, "started": 0, "delinquent": 0, "stopped": 0,
                                                   "signatures": 0}
    assert not guard(world.subscription.subscription_id).delinquent


def test_an_ended_subscription_caught_moving_funds_stays_caught_after_its_debt_expires(localnet, gateway):
    world = owing_world(localnet, gateway)
    sub = world.subscription
    end_subscription(sub.subscription_id, actor="api:platform")
    localnet.rpc("localnet_driftTransferOut", sub.agent_wallet.pubkey, 0, 100_000_000, str(Keypair().pubkey()))
    assert detect_delinquency(gateway=gateway)["delinquent"] == 1
    IOU.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_due_ious() == [IOU.objects.get().pk]  # past its TTL: no longer blocking, still owed

    assert detect_delinquency(gateway=gateway)["stopped"] == 0
    answer = guard(sub.subscription_id)
    assert answer.delinquent and answer.can_withdraw and answer.owed == 4_000_000
