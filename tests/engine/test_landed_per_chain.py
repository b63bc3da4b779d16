"""The ledger follows the chain (docs/design.md, "The ledger follows the chain"): a payout the
ledger recorded ``expired`` that the chain says landed — as an earlier version recorded them when
a lagging replica's "not found" met another node's height — is applied as paid under the wallet
lock, whoever reads its signature first (an IOU retry, the resolver, reconciliation): the IOU
closes, the trail says "landed per chain", an alert says whether a second payout was signed and
whether it landed, and nothing is ever sent again for it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from profitshare.chain.errors import TransactionFailed
from profitshare.models import (
    IOU,
    Alert,
    AttemptStatus,
    AuditEvent,
    Distribution,
    DistributionStatus,
    IouReason,
    IouStatus,
    PayoutAttempt,
)
from profitshare.services import earnings, ious, leg_totals
from profitshare.services.engine import process_distribution, retry_iou
from profitshare.services.reconciliation import reconcile
from profitshare.services.resolver import resolve_stale
from tests.chain.gateway_support import make_gateway
from tests.chain.test_gateway_rpc import dead_url
from tests.world import make_world, rewrite_ledger, wallet_held_elsewhere

pytestmark = pytest.mark.django_db(transaction=True)
SHARE = 3_000_000  # 10 % of a 30 USDC close


def _record_second_attempt(gateway, world, dist: Distribution, *, lands: bool) -> PayoutAttempt:
    """Sign a second payout of the share, as the old engine did after its wrong "expired", send
    it (it lands only when the agent has USDC again) and record it as the engine would."""
    signed = gateway.build_payout(world.agent, world.creator, SHARE, reference=f"qv:d{dist.pk}:a2",
                                  create_destination_ata=False)
    refusal = gateway.send_many([signed.transaction])[signed.signature]
    if lands:
        assert refusal is None and gateway.signature_status(signed.signature).state == "landed"
    else:
        assert isinstance(refusal, TransactionFailed)  # the agent had no USDC left
    return PayoutAttempt.objects.create(
        distribution=dist, agent_wallet=dist.subscription.agent_wallet, amount=SHARE, signature=signed.signature,
        raw_transaction=signed.raw, blockhash=signed.blockhash, last_valid_block_height=signed.last_valid_block_height,
        destination_owner=str(signed.destination_owner), destination_ata=str(signed.destination_ata),
        status=AttemptStatus.LANDED if lands else AttemptStatus.FAILED,
        error="" if lands else "TransactionFailed: insufficient funds", resolved_at=timezone.now(),
    )


def wrongly_expired(localnet, gateway, *, second_lands: bool = False):
    """A close paid on chain whose ledger says what an earlier version wrote: the payout
    ``expired``, a second one signed (refused for lack of USDC; or landed when ``second_lands``),
    the share owed on an IOU (none when the second landed). Returns ``(world, dist, first)``."""
    world = make_world(localnet)
    dist = process_distribution(world.close(30_000_000).distribution.pk, gateway=gateway)
    assert (dist.status, world.creator_usdc()) == (DistributionStatus.PAID, SHARE)
    first = PayoutAttempt.objects.get(distribution=dist)
    # the earlier version paid step by step: its transfer spent USDC withdrawn before it
    PayoutAttempt.objects.filter(pk=first.pk).update(
        status=AttemptStatus.EXPIRED, error="blockhash expired unlanded", slot=None, path="transfer", settles=False,
        withdraw_amount=0,
    )
    if second_lands:
        localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), SHARE)  # a later profit was withdrawn
        _record_second_attempt(gateway, world, dist, lands=True)  # the ledger counts this one as the payment
    else:
        _record_second_attempt(gateway, world, dist, lands=False)
        rewrite_ledger(dist, paid=0, owed=SHARE, withdrawn=SHARE, status=DistributionStatus.OWED)
        now = timezone.now()
        IOU.objects.create(distribution=dist, subscription=dist.subscription, creator=dist.creator, amount=SHARE,
                           reason=IouReason.TRANSFER_FAILED, next_retry_at=now, expires_at=now + timedelta(days=7))
    earnings.rebuild()  # the rollups as that ledger had them
    first.refresh_from_db()
    return world, Distribution.objects.get(pk=dist.pk), first


def assert_paid_per_chain(world, dist: Distribution, first: PayoutAttempt, *, attempts: int = 2) -> Alert:
    dist.refresh_from_db()
    first.refresh_from_db()
    assert (dist.status, dist.paid, dist.owed, dist.withdrawn) == (DistributionStatus.PAID, SHARE, 0, 0)
    assert first.status == AttemptStatus.LANDED and first.slot is not None
    assert IOU.objects.get(distribution=dist).status == IouStatus.PAID
    assert PayoutAttempt.objects.filter(distribution=dist).count() == attempts  # nothing new was signed
    assert world.creator_usdc() == SHARE  # and nothing more was paid
    reasons = set(AuditEvent.objects.filter(data__signature=first.signature).values_list("entity", "reason"))
    assert {("distribution", "landed per chain"), ("iou", "landed per chain")} <= reasons
    assert AuditEvent.objects.filter(entity="payout_attempt", entity_id=first.signature, from_status="expired",
                                     to_status="landed", reason="landed per chain").exists()
    assert earnings.ledger_sums() == earnings.rollup_sums()
    assert leg_totals.ledger_sums() == leg_totals.rollup_sums()
    alert = Alert.objects.get(kind="landed_per_chain")
    assert (alert.severity, alert.amount, alert.data["signature"]) == ("critical", SHARE, first.signature)
    return alert


def test_an_iou_retry_finds_the_payout_landed_and_sends_nothing_again(localnet, gateway):
    world, dist, first = wrongly_expired(localnet, gateway)
    [iou_id] = ious.claim_due_ious(now=timezone.now() + timedelta(minutes=1))
    retry_iou(iou_id, gateway=gateway)
    alert = assert_paid_per_chain(world, dist, first)
    assert alert.data["second_payout_signed"] is True and alert.data["second_payout_landed"] is False
    assert alert.data["later_attempts"][0]["status"] == AttemptStatus.FAILED
    assert "1 payout(s) were signed after it, none landed" in alert.subject


def test_the_resolver_applies_it_for_a_distribution_that_still_owes(localnet, gateway):
    world, dist, first = wrongly_expired(localnet, gateway)
    counts = resolve_stale(gateway=gateway, now=timezone.now() + timedelta(hours=1))
    assert counts["landed_per_chain"] == 1
    assert_paid_per_chain(world, dist, first)
    assert resolve_stale(gateway=gateway, now=timezone.now() + timedelta(hours=1))["landed_per_chain"] == 0  # once


def test_reconciliation_repairs_it_from_the_agent_wallets_history(localnet, gateway):
    world, dist, first = wrongly_expired(localnet, gateway)
    report = reconcile(gateway=gateway)
    assert_paid_per_chain(world, dist, first)
    [repaired] = [m for m in report.mismatches if m["kind"] == "landed_per_chain"]
    assert (repaired["signature"], repaired["repaired"], repaired["ours"]["status"]) == (first.signature, True, "expired")
    assert report.mismatched == 1 and report.unrecorded == 0 and report.error == ""
    assert not Alert.objects.filter(kind="reconciliation_mismatch").exists()  # alerted once, as landed_per_chain


def test_a_payout_paid_twice_is_said_so_and_the_books_still_balance(localnet, gateway):
    world, dist, first = wrongly_expired(localnet, gateway, second_lands=True)
    assert world.creator_usdc() == 2 * SHARE  # what the old decision let happen
    reconcile(gateway=gateway)
    dist.refresh_from_db()
    first.refresh_from_db()
    assert first.status == AttemptStatus.LANDED  # the ledger follows the chain
    assert (dist.status, dist.paid, dist.owed) == (DistributionStatus.PAID, SHARE, 0)  # credited at most what was owed
    alert = Alert.objects.get(kind="landed_per_chain")
    assert alert.data["second_payout_landed"] is True and alert.data["overpaid"] == SHARE
    assert "paid twice" in alert.subject
    second = reconcile(gateway=gateway)  # the next run compares paid with the landed attempts, leg by leg too
    assert [m["kind"] for m in second.mismatches] == ["leg_sum", "ledger_sum"]
    assert [m["chain"]["landed_attempts_total"] for m in second.mismatches] == [2 * SHARE, 2 * SHARE]


def test_a_busy_wallet_is_left_for_the_next_run(localnet, gateway):
    world, dist, first = wrongly_expired(localnet, gateway)
    with wallet_held_elsewhere(world.subscription.agent_wallet.pubkey):
        report = reconcile(gateway=gateway)
        assert [m["kind"] for m in report.mismatches] == []
        assert PayoutAttempt.objects.get(pk=first.pk).status == AttemptStatus.EXPIRED
    reconcile(gateway=gateway)  # the bookmark did not move: the signature is read again
    assert_paid_per_chain(world, dist, first)


def test_when_the_chain_cannot_be_asked_nothing_new_is_signed(localnet, gateway):
    world, dist, first = wrongly_expired(localnet, gateway)
    [iou_id] = ious.claim_due_ious(now=timezone.now() + timedelta(minutes=1))
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), SHARE)  # USDC a new payout could spend
    down = make_gateway(localnet, urls=[dead_url()], max_attempts=1)
    retry_iou(iou_id, gateway=down)
    assert IOU.objects.get(pk=iou_id).status == IouStatus.PROCESSING  # left for the resolver
    assert PayoutAttempt.objects.filter(distribution=dist).count() == 2
    assert PayoutAttempt.objects.get(pk=first.pk).status == AttemptStatus.EXPIRED
    assert world.creator_usdc() == SHARE


def test_a_one_transaction_payout_found_landed_is_paid_and_settled_without_touching_withdrawn(localnet, gateway):
    """The atomic payout's own withdraw brought what it paid: applied per chain, it leaves the
    distribution's withdrawn funds (here withdrawn after it) alone and marks it settled."""
    world = make_world(localnet)
    dist = process_distribution(world.close(30_000_000).distribution.pk, gateway=gateway)
    first = PayoutAttempt.objects.get(distribution=dist)
    assert (first.path, first.withdraw_amount) == ("atomic", SHARE)
    PayoutAttempt.objects.filter(pk=first.pk).update(status=AttemptStatus.EXPIRED, slot=None)
    # meanwhile a step-by-step withdraw brought 1 USDC to the agent's account for it
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), 1_000_000)
    rewrite_ledger(dist, paid=0, owed=SHARE, withdrawn=1_000_000, settled=False, status=DistributionStatus.OWED)
    now = timezone.now()
    IOU.objects.create(distribution=dist, subscription=dist.subscription, creator=dist.creator, amount=SHARE,
                       reason=IouReason.RPC_UNAVAILABLE, next_retry_at=now, expires_at=now + timedelta(days=7))
    earnings.rebuild()
    [iou_id] = ious.claim_due_ious(now=now + timedelta(minutes=1))
    retry_iou(iou_id, gateway=gateway)
    dist.refresh_from_db()
    # the 1 USDC is still on the agent's account: the ledger says so
    assert (dist.status, dist.paid, dist.owed, dist.withdrawn, dist.settled) == (
        DistributionStatus.PAID, SHARE, 0, 1_000_000, True)
    assert world.agent_usdc() == 1_000_000
    assert PayoutAttempt.objects.filter(distribution=dist).count() == 1 and world.creator_usdc() == SHARE
