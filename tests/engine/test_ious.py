"""IOUs: retried with funds already withdrawn, claimed once across workers, voided with a reason,
and guards that retry before refusing."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from profitshare.models import (
    IOU,
    AuditEvent,
    DistributionStatus,
    IouReason,
    IouStatus,
    PayoutAttempt,
)
from profitshare.services import ious
from profitshare.services.engine import process_distribution, retry_iou
from profitshare.services.errors import Conflict, InvalidInput
from profitshare.services.guards import guard
from tests.world import make_world, owe_for_lack_of_sol

pytestmark = pytest.mark.django_db(transaction=True)


def test_iou_retry_after_top_up_pays_exactly_the_debt(localnet, gateway):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)  # subscriber tops up SOL
    assert ious.claim_due_ious(now=timezone.now() + timezone.timedelta(hours=1)) == [iou.pk]
    retry_iou(iou.pk, gateway=gateway)
    iou.refresh_from_db()
    distribution.refresh_from_db()
    assert (iou.status, iou.paid_amount, iou.attempts) == (IouStatus.PAID, 4_000_000, 1)
    assert (distribution.status, distribution.paid, distribution.owed) == (DistributionStatus.PAID, 4_000_000, 0)
    assert world.creator_usdc() == 4_000_000
    attempt = PayoutAttempt.objects.get(distribution=distribution)
    assert attempt.iou_id == iou.pk and attempt.status == "landed"  # retries are in the ledger too


def test_funds_withdrawn_for_an_iou_are_used_not_withdrawn_again(localnet, gateway):
    world = make_world(localnet)
    # a stray base unit in the agent's token account: the payout goes step by step
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), 1)
    distribution = world.close(50_000_000).distribution
    # every transfer is dropped: the withdraw lands, the payout never does
    localnet.rpc("localnet_setFaults", {"dropRate": 1.0, "dropPrograms": ["TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"]})
    process_distribution(distribution.pk, gateway=gateway)
    localnet.rpc("localnet_advanceSlots", 151)
    process_distribution(distribution.pk, gateway=gateway)  # expired attempt, re-signed, dropped again
    localnet.rpc("localnet_advanceSlots", 151)
    process_distribution(distribution.pk, gateway=gateway)
    localnet.rpc("localnet_setFaults", {})
    distribution.refresh_from_db()
    collateral_after_withdraw = world.drift()["collateral"]
    assert distribution.withdrawn == 5_000_000
    assert world.agent_usdc() == 5_000_001
    localnet.rpc("localnet_advanceSlots", 151)
    process_distribution(distribution.pk, gateway=gateway)
    distribution.refresh_from_db()
    if distribution.status != DistributionStatus.PAID:  # it became an IOU: retry it
        iou = IOU.objects.get(distribution=distribution)
        assert ious.claim_iou(iou.pk, actor="test")
        retry_iou(iou.pk, gateway=gateway)
        distribution.refresh_from_db()
    assert distribution.status == DistributionStatus.PAID
    assert world.creator_usdc() == 5_000_000
    assert world.drift()["collateral"] == collateral_after_withdraw  # never withdrawn twice


def test_two_workers_racing_never_claim_the_same_iou(localnet, gateway):
    debts = [owe_for_lack_of_sol(localnet, gateway, pnl=10_000_000 + n)[2].pk for n in range(6)]
    later = timezone.now() + timezone.timedelta(hours=1)
    claimed: list[list[int]] = []
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        try:
            claimed.append(ious.claim_due_ious(limit=4, now=later))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = claimed
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(debts)
    assert IOU.objects.filter(status=IouStatus.PROCESSING).count() == 6


def test_void_needs_a_reason_and_moves_the_debt_to_voided(localnet, gateway):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    with pytest.raises(InvalidInput):
        ious.void_iou(iou.pk, reason="  ", actor="admin:alice")
    iou.refresh_from_db()
    assert iou.status == IouStatus.OPEN
    ious.void_iou(iou.pk, reason="creator asked to waive", actor="admin:alice")
    iou.refresh_from_db()
    distribution.refresh_from_db()
    assert (iou.status, iou.voided_by) == (IouStatus.VOIDED, "admin:alice")
    assert (distribution.owed, distribution.voided) == (0, 4_000_000)
    assert distribution.status == DistributionStatus.VOIDED  # nothing was paid of it: not "owed"
    event = AuditEvent.objects.filter(entity="iou", entity_id=str(iou.pk), to_status="voided").get()
    assert event.reason == "creator asked to waive" and event.actor == "admin:alice"
    with pytest.raises(Conflict):
        ious.void_iou(iou.pk, reason="again", actor="admin:alice")


def test_guard_retries_then_refuses_with_the_amount_owed(localnet, gateway):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)

    def retry(iou_id):
        if ious.claim_iou(iou_id, actor="guard"):
            retry_iou(iou_id, gateway=gateway)

    answer = guard(world.subscription.subscription_id, retry=retry)
    assert (answer.can_withdraw, answer.can_delete, answer.owed) == (False, False, 4_000_000)
    assert "4000000" in answer.message
    iou.refresh_from_db()
    assert iou.attempts == 1 and iou.reason == IouReason.INSUFFICIENT_SOL
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    answer = guard(world.subscription.subscription_id, retry=retry)
    assert (answer.can_withdraw, answer.owed) == (True, 0)
    assert world.creator_usdc() == 4_000_000


def test_an_expired_iou_no_longer_blocks_but_stays_owed(localnet, gateway):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    IOU.objects.filter(pk=iou.pk).update(expires_at=timezone.now() - timezone.timedelta(seconds=1), status="expired")
    answer = guard(world.subscription.subscription_id)
    assert (answer.can_withdraw, answer.owed, answer.blocking_owed) == (True, 4_000_000, 0)


def test_concurrent_runs_of_one_distribution_pay_once(localnet, gateway):
    world = make_world(localnet)
    distribution = world.close(60_000_000).distribution
    errors = []

    def run():
        try:
            process_distribution(distribution.pk, gateway=gateway)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert world.creator_usdc() == 6_000_000
    assert PayoutAttempt.objects.filter(distribution=distribution).count() == 1


def test_the_retry_sweep_pays_many_ious_in_rounds_of_one_per_wallet(localnet, gateway):
    from profitshare.services.engine import retry_ious

    first, d1, _ = owe_for_lack_of_sol(localnet, gateway, pnl=40_000_000)
    d2 = first.close(20_000_000).distribution  # a second debt on the same agent wallet
    process_distribution(d2.pk, gateway=gateway)
    second, d3, _ = owe_for_lack_of_sol(localnet, gateway, pnl=30_000_000)
    for world in (first, second):
        localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    claimed = ious.claim_due_ious(now=timezone.now() + timezone.timedelta(hours=1))
    assert len(claimed) == 3

    assert sorted(retry_ious(claimed, gateway=gateway)) == sorted(claimed)

    assert set(IOU.objects.values_list("status", flat=True)) == {IouStatus.PAID}
    assert first.creator_usdc() + (second.creator_usdc() if second.creator != first.creator else 0) == 9_000_000
    for d, share in ((d1, 4_000_000), (d2, 2_000_000), (d3, 3_000_000)):
        d.refresh_from_db()
        assert (d.status, d.paid) == (DistributionStatus.PAID, share)
    # the two debts of one wallet were paid one after the other, never in one round
    first_wallet = PayoutAttempt.objects.filter(distribution__in=[d1, d2]).order_by("id")
    assert [a.distribution_id for a in first_wallet] == [d1.pk, d2.pk]


def test_a_busy_wallet_leaves_its_iou_processing_for_the_resolver(localnet, gateway):
    import psycopg

    from profitshare.services.engine import retry_ious
    from profitshare.services.locks import advisory_key

    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    assert ious.claim_due_ious(now=timezone.now() + timezone.timedelta(hours=1)) == [iou.pk]
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")},
                         autocommit=True) as other:  # another worker holds the wallet
        other.execute("SELECT pg_advisory_lock(%s)", [advisory_key(world.subscription.agent_wallet.pubkey)])
        assert retry_ious([iou.pk], gateway=gateway, lock_timeout=0.2) == []
    iou.refresh_from_db()
    assert iou.status == IouStatus.PROCESSING and world.creator_usdc() == 0


def test_an_iou_owed_for_lack_of_sol_is_retried_once_the_wallet_is_topped_up(localnet, gateway, settings):
    from profitshare import tasks

    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    assert iou.sol_needed == gateway.payout_lamports_needed(atomic=True, include_withdraw=True, missing_token_accounts=2)
    assert iou.next_retry_at > timezone.now()  # backing off
    assert ious.wake_topped_up(gateway) == []  # still 0.001 SOL: nothing to wake
    assert tasks.retry_due_ious_task() == 0
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), iou.sol_needed)  # the subscriber tops up
    assert tasks.retry_due_ious_task() == 1  # woken and paid on the next sweep
    iou.refresh_from_db()
    assert iou.status == IouStatus.PAID and world.creator_usdc() == 4_000_000
    assert AuditEvent.objects.filter(entity="iou", entity_id=str(iou.pk), reason="agent wallet topped up").exists()


def test_topped_up_wallets_unread_wake_nothing(localnet, gateway):
    from tests.chain.gateway_support import make_gateway

    _, _, iou = owe_for_lack_of_sol(localnet, gateway)
    dead = make_gateway(type("Dead", (), {"url": "http://127.0.0.1:9"})(), max_attempts=1)
    assert ious.wake_topped_up(dead) == []
    iou.refresh_from_db()
    assert iou.next_retry_at > timezone.now()
