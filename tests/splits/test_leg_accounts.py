"""A recipient without a USDC token account when its leg's USDC may already be withdrawn
(docs/design.md, "A recipient without a token account"): an IOU retry, or a run resumed after
its withdraw, pays the other legs without it and keeps it owed, reason ``no_token_account``,
until the account exists. Balances on the local node, legs and IOUs in PostgreSQL."""

from __future__ import annotations

import base64

import pytest
from django.utils import timezone
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    BurnCheckedParams,
    CloseAccountParams,
    burn_checked,
    close_account,
    get_associated_token_address,
)

from profitshare import tasks
from profitshare.models import (
    IOU,
    AttemptStatus,
    AuditEvent,
    Distribution,
    DistributionStatus,
    IouReason,
    IouStatus,
    LegCarry,
    LegRole,
    PayoutAttempt,
)
from profitshare.services import ious as iou_service
from profitshare.services.engine import process_distribution, retry_iou_now
from tests.splits.legs import EXPECTED, SHARE, assert_legs_add_up, balances, transfers_in
from tests.world import USDC, token_balance

pytestmark = pytest.mark.django_db(transaction=True)


def close_usdc_account(localnet, owner: Keypair) -> None:
    """The owner empties (burns) and closes its USDC token account, in a transaction it signs
    itself: the SPL Token program's own instructions, as any wallet app sends them."""
    localnet.rpc("requestAirdrop", str(owner.pubkey()), 10_000_000)
    ata = get_associated_token_address(owner.pubkey(), USDC)
    balance = int(localnet.rpc("getTokenAccountBalance", str(ata))["value"]["amount"])
    instructions = [
        burn_checked(BurnCheckedParams(program_id=TOKEN_PROGRAM_ID, account=ata, mint=USDC, owner=owner.pubkey(),
                                       amount=balance, decimals=6)),
        close_account(CloseAccountParams(program_id=TOKEN_PROGRAM_ID, account=ata, dest=owner.pubkey(),
                                         owner=owner.pubkey())),
    ]
    blockhash = Hash.from_string(localnet.rpc("getLatestBlockhash", {"commitment": "confirmed"})["value"]["blockhash"])
    tx = Transaction([owner], Message.new_with_blockhash(instructions, owner.pubkey(), blockhash), blockhash)
    signature = localnet.rpc("sendTransaction", base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"})
    assert localnet.rpc("getSignatureStatuses", [signature])["value"][0]["err"] is None
    assert localnet.rpc("getAccountInfo", str(ata), {"encoding": "base64"})["value"] is None


def ious_by_role(distribution) -> dict[str, IOU]:
    return {iou.leg.role: iou for iou in IOU.objects.filter(distribution=distribution).select_related("leg")}


def test_a_referrer_who_closed_its_account_after_the_iou_opened_is_held_and_the_others_are_paid(
    localnet, gateway, splits,
):
    world = splits["world"](lamports=1_000_000)  # too little SOL: every leg is owed
    distribution = world.close(100_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    assert {iou.reason for iou in ious_by_role(distribution).values()} == {IouReason.INSUFFICIENT_SOL}
    referrer = splits["keys"][LegRole.REFERRAL_1]
    close_usdc_account(localnet, referrer)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    before = balances(localnet, splits, world)

    retry_iou_now(ious_by_role(distribution)[LegRole.CREATOR].pk, actor="test", gateway=gateway)

    (attempt,) = PayoutAttempt.objects.filter(distribution=distribution)
    assert (attempt.status, attempt.path, attempt.withdraw_amount) == (AttemptStatus.LANDED, "atomic", SHARE - 500_000)
    assert transfers_in(localnet, attempt.signature) == [
        EXPECTED[role] for role in (LegRole.CREATOR, LegRole.PLATFORM, LegRole.REFERRAL_2, LegRole.REFERRAL_3)]
    after = balances(localnet, splits, world)
    assert {role: after[role] - before[role] for role in after} == {**EXPECTED, LegRole.REFERRAL_1: 0}
    ious = ious_by_role(distribution)
    held = ious.pop(LegRole.REFERRAL_1)
    assert {iou.status for iou in ious.values()} == {IouStatus.PAID}
    assert (held.status, held.reason, held.remaining, held.last_error) == (
        IouStatus.OPEN, IouReason.NO_TOKEN_ACCOUNT, 500_000, "no USDC token account")
    distribution.refresh_from_db()
    assert (distribution.status, distribution.owed, distribution.withdrawn) == (
        DistributionStatus.PARTIALLY_PAID, 500_000, 0)  # nothing withdrawn for the held leg
    assert_legs_add_up(distribution)
    assert not LegCarry.objects.filter(subscription=world.subscription).exists()  # owed, not carried
    assert AuditEvent.objects.filter(entity="distribution", entity_id=str(distribution.pk),
                                     reason="referral_1 leg held: no USDC token account").exists()

    # retried again while the account is still missing: nothing is sent, the IOU waits again
    retry_iou_now(held.pk, actor="test", gateway=gateway)
    assert PayoutAttempt.objects.filter(distribution=distribution).count() == 1
    held.refresh_from_db()
    assert (held.status, held.reason, held.attempts) == (IouStatus.OPEN, IouReason.NO_TOKEN_ACCOUNT, 2)

    assert held.next_retry_at > timezone.now()  # backing off
    assert iou_service.wake_accounts_opened(gateway) == []  # still no account: nothing to wake
    assert tasks.retry_due_ious_task() == 0
    localnet.rpc("localnet_fundUsdc", str(referrer.pubkey()), 1)  # the account exists again (1 base unit)
    assert tasks.retry_due_ious_task() == 1  # woken and paid on the next sweep
    assert token_balance(localnet, referrer.pubkey()) == 1 + 500_000
    held.refresh_from_db()
    assert held.status == IouStatus.PAID
    assert AuditEvent.objects.filter(entity="iou", entity_id=str(held.pk), reason="recipient's token account opened",
                                     data__wallet=str(referrer.pubkey())).exists()
    distribution.refresh_from_db()
    assert (distribution.status, distribution.paid, distribution.owed) == (DistributionStatus.PAID, SHARE, 0)
    assert_legs_add_up(distribution)


def resumed_without_treasury_account(localnet, gateway, splits, settings):
    """A run resumed after its withdraw (a worker withdrew the share into the agent's token
    account and died before paying), with a treasury that has no USDC token account: returns
    ``(world, distribution, treasury keypair)`` once the engine has run it."""
    treasury = Keypair()
    settings.QV_PLATFORM_TREASURY = str(treasury.pubkey())
    world = splits["world"]()
    distribution = world.close(100_000_000).distribution
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), SHARE)
    Distribution.objects.filter(pk=distribution.pk).update(withdrawn=SHARE, status=DistributionStatus.PROCESSING)
    process_distribution(distribution.pk, gateway=gateway)
    return world, distribution, treasury


def test_a_run_resumed_after_its_withdraw_holds_a_leg_without_an_account_and_pays_it_from_those_funds(
    localnet, gateway, splits, settings,
):
    world, distribution, treasury = resumed_without_treasury_account(localnet, gateway, splits, settings)

    (attempt,) = PayoutAttempt.objects.filter(distribution=distribution)
    assert (attempt.status, attempt.amount, len(attempt.legs)) == (AttemptStatus.LANDED, SHARE - 150_000, 4)
    (iou,) = IOU.objects.filter(distribution=distribution)
    assert (iou.leg.role, iou.reason, iou.amount) == (LegRole.PLATFORM, IouReason.NO_TOKEN_ACCOUNT, 150_000)
    assert not LegCarry.objects.filter(subscription=world.subscription).exists()
    distribution.refresh_from_db()
    assert (distribution.owed, distribution.withdrawn) == (150_000, 150_000)
    assert world.agent_usdc() == 150_000  # the platform's part waits in the agent's account

    localnet.rpc("localnet_fundUsdc", str(treasury.pubkey()), 1)
    collateral = world.drift()
    retry_iou_now(iou.pk, actor="test", gateway=gateway)
    assert token_balance(localnet, treasury.pubkey()) == 1 + 150_000
    assert world.agent_usdc() == 0
    assert world.drift() == collateral  # paid from the funds already withdrawn, no second withdraw
    distribution.refresh_from_db()
    assert (distribution.status, distribution.owed, distribution.withdrawn) == (DistributionStatus.PAID, 0, 0)
    assert_legs_add_up(distribution)


def test_recipients_accounts_unread_wake_nothing(localnet, gateway, splits, settings):
    from tests.chain.gateway_support import make_gateway

    _, distribution, treasury = resumed_without_treasury_account(localnet, gateway, splits, settings)
    (iou,) = IOU.objects.filter(distribution=distribution, reason=IouReason.NO_TOKEN_ACCOUNT)
    localnet.rpc("localnet_fundUsdc", str(treasury.pubkey()), 1)
    dead = make_gateway(type("Dead", (), {"url": "http://127.0.0.1:9"})(), max_attempts=1)
    assert iou_service.wake_accounts_opened(dead) == []
    iou.refresh_from_db()
    assert iou.next_retry_at > timezone.now()
    assert iou_service.wake_accounts_opened(gateway) == [iou.pk]


def test_token_accounts_unread_at_a_retry_owe_it_again_and_nothing_moves(localnet, gateway, splits):
    world = splits["world"](lamports=1_000_000)
    distribution = world.close(100_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)
    before = balances(localnet, splits, world)
    localnet.rpc("localnet_setFaults", {"httpErrorRate": 1.0, "httpErrorMethods": ["getMultipleAccounts"]})
    try:
        retry_iou_now(ious_by_role(distribution)[LegRole.CREATOR].pk, actor="test", gateway=gateway)
    finally:
        localnet.rpc("localnet_setFaults", {})
    ious = ious_by_role(distribution).values()
    assert {(iou.status, iou.reason) for iou in ious} == {(IouStatus.OPEN, IouReason.RPC_UNAVAILABLE)}
    assert all(iou.last_error.startswith("token accounts:") for iou in ious)
    assert balances(localnet, splits, world) == before
    assert not PayoutAttempt.objects.filter(distribution=distribution).exists()
