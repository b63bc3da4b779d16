"""Settle and withdraw transactions are recorded before they are sent (DriftAction), and a
withdraw whose outcome a run never learned is resolved by its signature before the next
withdraw: landed, its delivery is used (never withdrawn twice); still live, nothing new is sent."""

from __future__ import annotations

import pytest

from profitshare.chain.drift.program import DRIFT_PROGRAM_ID
from profitshare.models import (
    IOU,
    AttemptStatus,
    AuditEvent,
    DistributionStatus,
    DriftAction,
    DriftActionKind,
    IouReason,
)
from profitshare.services.engine import drift_actions, process_distribution, retry_iou
from profitshare.services.engine.batch import Batch, load_items
from profitshare.services.engine.steps import settle, start
from profitshare.services.ious import claim_iou
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)
COLLATERAL = 1_000_000_000


def crash_after_withdraw_sent(localnet, gateway, distribution, *, dropped: bool) -> str:
    """What a worker killed right after sending its withdraw leaves behind: the distribution
    processing and settled, a prepared DriftAction, the withdraw sent (and landed, unless the
    node drops it)."""
    batch = Batch(gateway, "test:killed-worker")
    batch.items = load_items([distribution.pk])
    start(batch)
    settle(batch)
    item = batch.items[0]
    signed = {distribution.pk: gateway.build_withdraw(
        item.keypair, item.dist.subscription.drift_subaccount_id, distribution.share, True)}
    drift_actions.record(batch, DriftActionKind.WITHDRAW, signed, {distribution.pk: distribution.share})
    if dropped:
        localnet.rpc("localnet_setFaults", {"dropRate": 1.0, "dropPrograms": [str(DRIFT_PROGRAM_ID)]})
    gateway.send_many(list(signed.values()))
    localnet.rpc("localnet_setFaults", {})
    return signed[distribution.pk].signature


def test_every_run_records_its_settle_and_withdraw_before_sending(localnet, gateway):
    """On the step-by-step path (here: a stray base unit in the agent's token account keeps the
    payout off the one-transaction path), the settle and the withdraw are their own records."""
    world = make_world(localnet)
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), 1)
    distribution = world.close(10_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    actions = {a.kind: a for a in DriftAction.objects.filter(distribution=distribution)}
    assert set(actions) == {"settle", "withdraw"}
    assert (actions["settle"].status, actions["settle"].amount) == (AttemptStatus.LANDED, 0)
    withdraw = actions["withdraw"]
    assert (withdraw.status, withdraw.amount, withdraw.delivered) == (AttemptStatus.LANDED, 1_000_000, 1_000_000)
    tx = localnet.rpc("getTransaction", withdraw.signature, {"encoding": "json"})
    assert tx is not None and tx["meta"]["err"] is None


def test_a_withdraw_that_landed_after_the_worker_died_is_used_not_repeated(localnet, gateway):
    world = make_world(localnet)
    distribution = world.close(10_000_000).distribution  # share 1 USDC
    signature = crash_after_withdraw_sent(localnet, gateway, distribution, dropped=False)
    assert world.agent_usdc() == 1_000_000

    process_distribution(distribution.pk, gateway=gateway)  # the resolver's run

    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid, distribution.withdrawn) == (DistributionStatus.PAID, 1_000_000, 0)
    assert world.creator_usdc() == 1_000_000
    # withdrawn once (a second withdraw would take 1,000,000 more); Drift rounds the rest down by 1
    assert world.drift()["collateral"] == COLLATERAL + 10_000_000 - 1_000_000 - 1
    (withdraw,) = DriftAction.objects.filter(distribution=distribution, kind="withdraw")
    assert (withdraw.signature, withdraw.status, withdraw.delivered) == (signature, AttemptStatus.LANDED, 1_000_000)
    assert AuditEvent.objects.filter(entity="distribution", entity_id=str(distribution.pk),
                                     reason="earlier withdraw landed late", data__delivered=1_000_000).exists()


def test_a_live_withdraw_blocks_a_second_one_until_its_blockhash_expires(localnet, gateway):
    world = make_world(localnet)
    distribution = world.close(20_000_000).distribution  # share 2 USDC
    crash_after_withdraw_sent(localnet, gateway, distribution, dropped=True)

    process_distribution(distribution.pk, gateway=gateway)

    distribution.refresh_from_db()
    iou = IOU.objects.get(distribution=distribution)
    assert (iou.reason, iou.remaining) == (IouReason.RPC_UNAVAILABLE, 2_000_000)
    assert "undecided" in iou.last_error
    assert world.drift()["collateral"] == COLLATERAL + 20_000_000  # nothing withdrawn
    assert DriftAction.objects.filter(distribution=distribution, kind="withdraw").count() == 1

    localnet.rpc("localnet_advanceSlots", 151)  # the dropped withdraw can never land now
    assert claim_iou(iou.pk, actor="test")
    retry_iou(iou.pk, gateway=gateway)

    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid) == (DistributionStatus.PAID, 2_000_000)
    assert world.creator_usdc() == 2_000_000
    assert world.drift()["collateral"] == COLLATERAL + 20_000_000 - 2_000_000 - 1  # once; Drift rounds down
    statuses = list(DriftAction.objects.filter(distribution=distribution, kind="withdraw")
                    .order_by("id").values_list("status", flat=True))
    assert statuses == [AttemptStatus.EXPIRED, AttemptStatus.LANDED]


def test_bytes_an_earlier_run_recorded_are_signed_again_not_recorded_twice(localnet, gateway):
    """A send the node dropped leaves a recorded DriftAction the chain never saw; signing the
    same instruction with the same blockhash again can give the very same bytes (the nonce has
    1,000 values): those are re-signed, so the record stays one row per transaction."""
    from profitshare.services.engine.steps import _sign_unique

    world = make_world(localnet)
    distribution = world.close(10_000_000).distribution
    batch = Batch(gateway, "test")
    batch.items = load_items([distribution.pk])
    item = batch.items[0]
    recent = gateway.transactions.latest_blockhash()
    sub_account = item.dist.subscription.drift_subaccount_id
    earlier = gateway.build_settle(item.keypair, sub_account, 0, recent, check_unique=False)
    drift_actions.record(batch, DriftActionKind.SETTLE, {distribution.pk: earlier})  # its send was dropped
    calls = []

    def sign(it, blockhash):  # the first signing happens to repeat the earlier bytes
        calls.append(blockhash)
        return earlier if len(calls) == 1 else gateway.build_settle(it.keypair, sub_account, 0, blockhash, check_unique=False)

    signed = _sign_unique(batch, [item], sign, lambda item, error: pytest.fail(error))

    assert len(calls) == 2 and signed[distribution.pk].signature != earlier.signature
    drift_actions.record(batch, DriftActionKind.SETTLE, signed)  # no IntegrityError
    assert DriftAction.objects.filter(distribution=distribution).count() == 2
