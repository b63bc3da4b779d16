"""Ending a subscription flushes what it carries (docs/design.md, "A subscription ends"): the
flush distribution pays every carry on the real local node without the dust threshold, a carry
whose recipient has no USDC token account waits for the sweep, and intake refuses closes of an
ended subscription. Balances on the node, rows in PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from solders.keypair import Keypair

from profitshare.models import (
    AuditEvent,
    CarryReason,
    Distribution,
    DistributionLeg,
    DistributionStatus,
    DriftAction,
    LegCarry,
    LegRole,
    PayoutAttempt,
    Subscription,
    SubscriptionStatus,
    TradeClose,
)
from profitshare.services.engine import process_distribution
from profitshare.services.errors import Conflict, NotFound
from profitshare.services.intake import CloseReport, record_close
from profitshare.services.referrals import link_referral
from profitshare.services.subscription_end import end_subscription, flush_ended_carries
from tests.chain.gateway_support import make_gateway
from tests.factories import SubscriptionFactory
from tests.world import make_world, token_balance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def referred(localnet, settings):
    """Splits of a creator with one referral level (5 %, no platform fee): ``world(ata=...)``
    makes a subscription whose creator was referred by a fresh wallet, given a USDC token account
    when ``ata``; returns ``(world, referrer)``."""
    settings.QV_PLATFORM_FEE_BPS = 0
    settings.QV_PLATFORM_TREASURY = ""
    settings.QV_REFERRAL_BPS = (500, 0, 0)
    settings.QV_DUST_THRESHOLD = 10_000
    settings.QV_DUST_THRESHOLD_NEW_ATA = 50_000

    def world(*, ata: bool = True):
        made = make_world(localnet)
        referrer = Keypair().pubkey()
        if ata:
            localnet.rpc("localnet_fundUsdc", str(referrer), 1)
        link_referral(str(made.creator), str(referrer))
        return made, referrer

    return world


def legs(distribution) -> dict[str, tuple[int, int, int, int, int]]:
    """``{role: (amount, carry_in, paid, owed, carried)}``."""
    return {
        leg.role: (leg.amount, leg.carry_in, leg.paid, leg.owed, leg.carried)
        for leg in DistributionLeg.objects.filter(distribution=distribution)
    }


def carries(sub) -> dict[str, tuple[int, str]]:
    return {c.role: (c.amount, c.reason) for c in LegCarry.objects.filter(subscription=sub)}


def carried_dust(world, gateway):
    """A close whose share (10 % of 0.4 USDC = 40,000) is dust for both legs: the creator's
    38,000 (below 0.05 USDC: its token account does not exist yet) and the referrer's 2,000."""
    first = world.close(400_000).distribution
    process_distribution(first.pk, gateway=gateway)
    first.refresh_from_db()
    assert first.status == DistributionStatus.CARRIED
    world.subscription.refresh_from_db()
    assert world.subscription.dust_carry == 38_000
    assert carries(world.subscription) == {LegRole.REFERRAL_1: (2_000, CarryReason.DUST)}
    return first


def test_ending_flushes_the_creators_and_the_referrers_dust_on_chain(localnet, gateway, referred):
    world, referrer = referred()
    carried_dust(world, gateway)
    referrer_before = token_balance(localnet, referrer)
    queued = []
    result = end_subscription(world.subscription.subscription_id, actor="test", on_commit=queued.append)
    assert result.created and queued == [result.flush_distribution_id]
    sub = Subscription.objects.get(pk=world.subscription.pk)
    assert sub.status == SubscriptionStatus.ENDED and sub.ended_at is not None
    flush = Distribution.objects.get(pk=result.flush_distribution_id)
    assert flush.close is None and flush.status == DistributionStatus.PENDING
    assert (flush.share, flush.owed, flush.carry_in, flush.realized_pnl, flush.split_terms) == (0, 0, 0, 0, {})
    assert (flush.profit_share_bps, flush.policy, flush.creator_id) == (sub.profit_share_bps, sub.policy, sub.bot.creator_id)

    process_distribution(flush.pk, gateway=gateway)
    flush.refresh_from_db()
    assert (flush.status, flush.carry_in, flush.paid, flush.owed, flush.carried) == (
        DistributionStatus.PAID, 40_000, 40_000, 0, 0)
    assert legs(flush) == {LegRole.CREATOR: (0, 38_000, 38_000, 0, 0), LegRole.REFERRAL_1: (0, 2_000, 2_000, 0, 0)}
    # below both thresholds, paid all the same: the subscription ended
    assert world.creator_usdc() == 38_000
    assert token_balance(localnet, referrer) - referrer_before == 2_000
    sub.refresh_from_db()
    assert sub.dust_carry == 0 and carries(sub) == {LegRole.REFERRAL_1: (0, CarryReason.DUST)}

    # ending it again: the first answer, no second flush
    events = AuditEvent.objects.filter(entity="subscription", entity_id=sub.subscription_id).count()
    again = end_subscription(sub.subscription_id, actor="test", on_commit=queued.append)
    assert (again.created, again.flush_distribution_id, again.subscription.ended_at) == (
        False, result.flush_distribution_id, sub.ended_at)
    assert queued == [result.flush_distribution_id]
    assert Distribution.objects.filter(subscription=sub, close__isnull=True).count() == 1
    assert AuditEvent.objects.filter(entity="subscription", entity_id=sub.subscription_id).count() == events
    assert flush_ended_carries(gateway) == []  # nothing left to flush


def test_a_close_after_the_end_is_refused_and_a_replay_of_an_earlier_one_still_answers(localnet, gateway, referred):
    world, _ = referred()
    first = world.close(400_000)
    sub_id = world.subscription.subscription_id
    end_subscription(sub_id, actor="test")
    late = CloseReport("late-close", sub_id, 0, 50_000_000, "full", datetime.now(UTC))
    closes, distributions = TradeClose.objects.count(), Distribution.objects.count()
    with pytest.raises(Conflict, match="has ended"):
        record_close(late)
    assert (TradeClose.objects.count(), Distribution.objects.count()) == (closes, distributions)
    assert not AuditEvent.objects.filter(entity="close", entity_id="late-close").exists()
    close = first.close
    replay = record_close(CloseReport(close.close_id, sub_id, close.market_index, close.realized_pnl, close.kind,
                                      close.closed_at))
    assert not replay.created and replay.distribution.pk == first.distribution.pk


def test_ending_with_nothing_carried_makes_no_distribution():
    sub = SubscriptionFactory()
    queued = []
    result = end_subscription(sub.subscription_id, actor="test", on_commit=queued.append)
    assert result.created and result.flush_distribution_id is None and queued == []
    assert not Distribution.objects.filter(subscription=sub).exists()
    event = AuditEvent.objects.get(entity="subscription", entity_id=sub.subscription_id, to_status="ended")
    assert (event.from_status, event.actor, event.data) == ("active", "test", {"flush_distribution_id": None, "carried": []})


def test_an_unknown_subscription_is_not_found_and_nothing_is_written():
    events = AuditEvent.objects.count()
    with pytest.raises(NotFound):
        end_subscription("no-such-subscription", actor="test")
    assert AuditEvent.objects.count() == events


def test_a_distribution_still_pending_at_the_end_takes_the_carries_without_the_threshold(localnet, gateway, referred):
    world, referrer = referred()
    carried_dust(world, gateway)
    referrer_before = token_balance(localnet, referrer)
    pending = world.close(100_000).distribution  # 10,000: 9,500 the creator's, 500 the referrer's
    result = end_subscription(world.subscription.subscription_id, actor="test")
    assert result.flush_distribution_id is None  # the pending one folds the carries
    process_distribution(pending.pk, gateway=gateway)
    pending.refresh_from_db()
    assert (pending.status, pending.carry_in, pending.paid) == (DistributionStatus.PAID, 40_000, 50_000)
    assert world.creator_usdc() == 47_500  # below 0.05 USDC, paid: the subscription ended
    assert token_balance(localnet, referrer) - referrer_before == 2_500
    assert flush_ended_carries(gateway) == []
    assert Distribution.objects.filter(subscription=world.subscription).count() == 2


def carried_for_lack_of_a_token_account(localnet, gateway, referred):
    """An ended subscription whose flush carried the referrer's 0.5 USDC again: the referrer has
    no USDC token account. Returns ``(world, referrer)``."""
    world, referrer = referred(ata=False)
    first = world.close(100_000_000).distribution  # 10 USDC: 9.5 the creator's, 0.5 the referrer's
    process_distribution(first.pk, gateway=gateway)
    assert world.creator_usdc() == 9_500_000
    assert carries(world.subscription) == {LegRole.REFERRAL_1: (500_000, CarryReason.NO_TOKEN_ACCOUNT)}
    result = end_subscription(world.subscription.subscription_id, actor="test")
    process_distribution(result.flush_distribution_id, gateway=gateway)
    flush = Distribution.objects.get(pk=result.flush_distribution_id)
    assert (flush.status, flush.carry_in, flush.paid, flush.carried) == (DistributionStatus.CARRIED, 500_000, 0, 500_000)
    assert carries(world.subscription) == {LegRole.REFERRAL_1: (500_000, CarryReason.NO_TOKEN_ACCOUNT)}
    assert token_balance(localnet, referrer) == 0
    return world, referrer


def test_the_sweep_flushes_a_carry_once_its_recipients_token_account_exists(localnet, gateway, referred):
    world, referrer = carried_for_lack_of_a_token_account(localnet, gateway, referred)
    assert flush_ended_carries(gateway) == []  # still no account: a flush would only carry it again
    assert Distribution.objects.filter(subscription=world.subscription).count() == 2
    localnet.rpc("localnet_fundUsdc", str(referrer), 1)  # the referrer's account now exists
    queued = []
    (flush_id,) = flush_ended_carries(gateway, on_commit=queued.append)
    assert queued == [flush_id]
    event = AuditEvent.objects.get(entity="distribution", entity_id=str(flush_id))
    assert event.actor == "schedule:ended-carries" and event.to_status == "pending"
    assert flush_ended_carries(gateway) == []  # one flush in flight is enough
    process_distribution(flush_id, gateway=gateway)
    flush = Distribution.objects.get(pk=flush_id)
    assert (flush.status, flush.close, flush.paid) == (DistributionStatus.PAID, None, 500_000)
    assert legs(flush)[LegRole.REFERRAL_1] == (0, 500_000, 500_000, 0, 0)
    assert token_balance(localnet, referrer) == 1 + 500_000
    assert carries(world.subscription) == {LegRole.REFERRAL_1: (0, CarryReason.NO_TOKEN_ACCOUNT)}
    assert flush_ended_carries(gateway) == []


def test_the_sweep_with_the_rpc_down_changes_nothing(localnet, gateway, referred, caplog):
    world, referrer = carried_for_lack_of_a_token_account(localnet, gateway, referred)
    localnet.rpc("localnet_fundUsdc", str(referrer), 1)
    distributions = list(Distribution.objects.order_by("pk").values())
    localnet.rpc("localnet_setFaults", {"httpErrorRate": 1.0, "httpErrorMethods": ["getMultipleAccounts"]})
    try:
        with caplog.at_level(logging.WARNING, logger="profitshare.services.subscription_end"):
            assert flush_ended_carries(gateway) == []
    finally:
        localnet.rpc("localnet_setFaults", {})
    assert list(Distribution.objects.order_by("pk").values()) == distributions
    assert carries(world.subscription) == {LegRole.REFERRAL_1: (500_000, CarryReason.NO_TOKEN_ACCOUNT)}
    assert any("sweep skipped" in r.getMessage() for r in caplog.records)
    assert len(flush_ended_carries(gateway)) == 1  # the node answers again: flushed


def test_the_scheduled_task_flushes_and_queues_the_payout(localnet, settings):
    from django_q.models import OrmQ

    from profitshare.tasks import flush_carries_task

    settings.QV_RPC_URLS = [localnet.url]
    sub = SubscriptionFactory()  # as an end whose in-flight payout carried its dust again leaves it
    Subscription.objects.filter(pk=sub.pk).update(status=SubscriptionStatus.ENDED, dust_carry=7_000)
    assert flush_carries_task() == 1
    flush = Distribution.objects.get(subscription=sub)
    assert (flush.close, flush.status) == (None, DistributionStatus.PENDING)
    assert [(q.task["func"], q.task["args"]) for q in OrmQ.objects.all()] == [
        ("profitshare.tasks.process_distribution_task", (flush.pk,))]
    assert flush_carries_task() == 0


def test_a_flush_whose_carries_another_payout_took_rests_paid_and_sends_nothing(localnet, gateway, referred):
    world, _ = referred()
    carried_dust(world, gateway)
    result = end_subscription(world.subscription.subscription_id, actor="test")
    # the carries are folded by another run first (e.g. a payout that was still in flight)
    Subscription.objects.filter(pk=world.subscription.pk).update(dust_carry=0)
    LegCarry.objects.filter(subscription=world.subscription).update(amount=0)
    process_distribution(result.flush_distribution_id, gateway=gateway)
    flush = Distribution.objects.get(pk=result.flush_distribution_id)
    assert (flush.status, flush.owed, flush.paid) == (DistributionStatus.PAID, 0, 0)
    assert not PayoutAttempt.objects.filter(distribution=flush).exists()
    assert not DriftAction.objects.filter(distribution=flush).exists()  # no settle for nothing
    assert AuditEvent.objects.filter(entity="distribution", entity_id=str(flush.pk), reason="nothing owed").exists()


def test_a_running_subscriptions_carry_is_flushed_once_its_recipient_opens_a_token_account(localnet, gateway, referred):
    from profitshare.services.subscription_end import flush_opened_accounts

    world, referrer = referred(ata=False)
    first = world.close(100_000_000).distribution  # 10 USDC: 9.5 the creator's, 0.5 the referrer's, carried
    process_distribution(first.pk, gateway=gateway)
    assert carries(world.subscription) == {LegRole.REFERRAL_1: (500_000, CarryReason.NO_TOKEN_ACCOUNT)}
    assert flush_opened_accounts(gateway) == []  # no account yet: nothing to flush
    localnet.rpc("localnet_fundUsdc", str(referrer), 1)
    dead = make_gateway(type("Dead", (), {"url": "http://127.0.0.1:9"})(), max_attempts=1)
    assert flush_opened_accounts(dead) == []  # unread: nothing changes
    assert Distribution.objects.filter(subscription=world.subscription).count() == 1
    queued = []
    (flush_id,) = flush_opened_accounts(gateway, on_commit=queued.append)
    assert queued == [flush_id]
    assert flush_opened_accounts(gateway) == []  # one flush in flight is enough
    process_distribution(flush_id, gateway=gateway)
    flush = Distribution.objects.get(pk=flush_id)
    assert (flush.status, flush.close, flush.carry_in, flush.paid) == (DistributionStatus.PAID, None, 500_000, 500_000)
    assert token_balance(localnet, referrer) == 1 + 500_000
    assert carries(world.subscription) == {LegRole.REFERRAL_1: (0, CarryReason.NO_TOKEN_ACCOUNT)}
    world.subscription.refresh_from_db()
    assert world.subscription.status == SubscriptionStatus.ACTIVE  # it keeps running
    assert AuditEvent.objects.filter(entity="distribution", entity_id=str(flush_id),
                                     reason="carry flush: the recipient's token account exists now").exists()


def test_a_carry_below_the_dust_threshold_waits_for_the_next_close_even_with_an_account(localnet, gateway, referred):
    from profitshare.services.subscription_end import flush_opened_accounts

    world, referrer = referred(ata=False)
    process_distribution(world.close(1_000_000).distribution.pk, gateway=gateway)  # referrer's 5,000: no account
    assert carries(world.subscription) == {LegRole.REFERRAL_1: (5_000, CarryReason.NO_TOKEN_ACCOUNT)}
    localnet.rpc("localnet_fundUsdc", str(referrer), 1)
    assert flush_opened_accounts(gateway) == []  # a flush would only carry it again as dust
