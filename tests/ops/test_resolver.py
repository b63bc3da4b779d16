"""Stale work (docs/design.md, "Stale work is decided by the chain"): processing distributions
and IOUs whose worker died, and pending distributions whose task was lost, are finished by the resolver from signature statuses on the
real local node — paid exactly once, never reset blind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from profitshare.models import (
    IOU,
    AttemptStatus,
    Distribution,
    DistributionStatus,
    IouStatus,
    PayoutAttempt,
)
from profitshare.services import ious
from profitshare.services.engine import process_distribution
from profitshare.services.resolver import resolve_stale
from tests.chain.gateway_support import make_gateway
from tests.world import make_world, wallet_held_elsewhere

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
LATER = timedelta(hours=1)


def test_a_dropped_payout_is_re_signed_only_after_it_expired_and_paid_once(localnet, gateway):
    world = make_world(localnet)
    localnet.rpc("localnet_setFaults", {"seed": 3, "dropRate": 1.0, "dropPrograms": [TOKEN_PROGRAM]})
    dist = process_distribution(world.close(50_000_000).distribution.pk, gateway=make_gateway(localnet, confirm_timeout=0.2))
    assert dist.status == DistributionStatus.PROCESSING  # the outcome is unknown: left to the resolver
    [sent] = PayoutAttempt.objects.all()
    assert sent.status == AttemptStatus.SENT
    quick = make_gateway(localnet, confirm_timeout=0.2)
    assert resolve_stale(gateway=quick, now=timezone.now() + LATER)["distributions"] == 1
    assert Distribution.objects.get(pk=dist.pk).status == DistributionStatus.PROCESSING  # still live: same bytes re-sent
    assert PayoutAttempt.objects.get().signature == sent.signature  # nothing new signed while it may land
    localnet.rpc("localnet_advanceSlots", 151)  # its blockhash expires unlanded
    localnet.rpc("localnet_setFaults", {})
    resolve_stale(gateway=gateway, now=timezone.now() + LATER)
    dist.refresh_from_db()
    assert (dist.status, dist.paid) == (DistributionStatus.PAID, 5_000_000)
    assert sorted(PayoutAttempt.objects.values_list("status", flat=True)) == [AttemptStatus.EXPIRED, AttemptStatus.LANDED]
    assert world.creator_usdc() == 5_000_000


def test_a_payout_whose_answer_was_lost_is_paid_from_its_signature_not_sent_again(localnet, gateway):
    world = make_world(localnet)
    localnet.rpc("localnet_setFaults", {"seed": 4, "loseResponseRate": 1.0})
    dist_id = world.close(50_000_000).distribution.pk
    localnet.rpc("localnet_setFaults", {})
    # settle and withdraw without faults, then the transfer's answer is lost: a worker that died
    quick = make_gateway(localnet, confirm_timeout=0.2, max_attempts=1)
    original = quick.send_many

    def lose_after_sending(signed):
        localnet.rpc("localnet_setFaults", {"seed": 4, "loseResponseRate": 1.0})
        try:
            return original(signed)
        finally:
            localnet.rpc("localnet_setFaults", {})

    quick.send_many = lose_after_sending  # the node really loses the answer; the engine is unchanged
    dist = process_distribution(dist_id, gateway=quick)
    assert world.creator_usdc() == 5_000_000  # it landed on chain
    if dist.status == DistributionStatus.PROCESSING:
        assert resolve_stale(gateway=gateway, now=timezone.now() + LATER)["distributions"] == 1
    dist.refresh_from_db()
    assert (dist.status, dist.paid) == (DistributionStatus.PAID, 5_000_000)
    assert PayoutAttempt.objects.filter(status=AttemptStatus.LANDED).count() == PayoutAttempt.objects.count() == 1
    assert world.creator_usdc() == 5_000_000


def test_a_pending_distribution_whose_task_was_lost_is_paid(localnet, gateway):
    world = make_world(localnet)
    dist_id = world.close(30_000_000).distribution.pk  # recorded; no worker ever took it
    assert resolve_stale(gateway=gateway)["distributions"] == 0  # not stale yet
    assert resolve_stale(gateway=gateway, now=timezone.now() + LATER)["distributions"] == 1
    dist = Distribution.objects.get(pk=dist_id)
    assert (dist.status, dist.paid) == (DistributionStatus.PAID, 3_000_000)
    assert world.creator_usdc() == 3_000_000


def test_an_iou_claimed_by_a_worker_that_died_is_retried(localnet, gateway):
    world = make_world(localnet, lamports=1_000_000)
    dist = process_distribution(world.close(40_000_000).distribution.pk, gateway=gateway)
    [iou_id] = ious.claim_due_ious(now=timezone.now() + timedelta(minutes=2))  # claimed; the worker dies here
    assert IOU.objects.get(pk=iou_id).status == IouStatus.PROCESSING
    localnet.rpc("requestAirdrop", world.subscription.agent_wallet.pubkey, 100_000_000)
    assert resolve_stale(gateway=gateway, now=timezone.now() + LATER)["ious"] == 1
    iou = IOU.objects.get(pk=iou_id)
    assert (iou.status, iou.paid_amount) == (IouStatus.PAID, 4_000_000)
    dist.refresh_from_db()
    assert (dist.status, dist.paid, dist.owed) == (DistributionStatus.PAID, 4_000_000, 0)
    assert world.creator_usdc() == 4_000_000


def test_a_busy_wallet_is_skipped_and_nothing_changes(localnet, gateway):
    world = make_world(localnet)
    dist_id = world.close(30_000_000).distribution.pk
    with wallet_held_elsewhere(world.subscription.agent_wallet.pubkey):
        counts = resolve_stale(gateway=gateway, now=timezone.now() + LATER)
        assert (counts["distributions"], counts["busy"]) == (0, 1)
        assert Distribution.objects.get(pk=dist_id).status == DistributionStatus.PENDING
    assert resolve_stale(gateway=gateway, now=timezone.now() + LATER)["distributions"] == 1
    assert world.creator_usdc() == 3_000_000


def test_a_payout_only_a_lagging_replica_can_report_is_never_expired_by_the_resolver(localnet, replica, gateway):
    """docs/design.md, "Expired only from a caught-up node": the payout lands, its worker stops
    before learning it; the primary refuses status reads and the replica is 200 slots behind.
    Once the primary's height is past the payout's last valid block height the resolver still
    signs nothing (the replica has not seen that far), and pays it from the replica's answer
    once the replica has."""
    world = make_world(localnet)
    dist_id = world.close(50_000_000).distribution.pk
    both = make_gateway(localnet, urls=[localnet.url, replica.url], slot_probe_seconds=0, confirm_timeout=0.2)
    original = both.send_many

    def lag_from_the_payout(signed):
        if PayoutAttempt.objects.filter(signature__in=[tx.signature for tx in signed]).exists():
            localnet.rpc("localnet_setFaults", {"seed": 6, "endpoints": {
                "primary": {"httpErrorRate": 1.0, "httpErrorMethods": ["getSignatureStatuses"]},
                "replica": {"lagSlots": 200},
            }})
        return original(signed)

    both.send_many = lag_from_the_payout  # the node's faults switch on as the payout is sent
    assert process_distribution(dist_id, gateway=both).status == DistributionStatus.PROCESSING
    [sent] = PayoutAttempt.objects.all()
    assert (sent.status, world.creator_usdc()) == (AttemptStatus.SENT, 5_000_000)  # landed, undecided
    localnet.rpc("localnet_advanceSlots", 151)
    assert localnet.rpc("getBlockHeight") > sent.last_valid_block_height
    resolve_stale(gateway=both, now=timezone.now() + LATER)
    assert list(PayoutAttempt.objects.values_list("status", flat=True)) == [AttemptStatus.SENT]  # not expired
    localnet.rpc("localnet_advanceSlots", 200)
    resolve_stale(gateway=both, now=timezone.now() + LATER)
    dist = Distribution.objects.get(pk=dist_id)
    assert (dist.status, dist.paid) == (DistributionStatus.PAID, 5_000_000)
    assert list(PayoutAttempt.objects.values_list("signature", "status")) == [(sent.signature, AttemptStatus.LANDED)]
    assert world.creator_usdc() == 5_000_000
