"""Intake: exactly once per close id, policies and terms applied under the subscription lock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from profitshare.models import AuditEvent, Distribution, Policy, Subscription, TradeClose
from profitshare.models.audit import AppendOnlyError
from profitshare.services.bots import publish_bot
from profitshare.services.errors import Conflict, InvalidInput, NotFound
from profitshare.services.intake import CloseReport, record_close
from profitshare.services.subscriptions import create_subscription
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

WALLET = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
CREATOR = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


def report(sub, close_id="c-1", pnl=1_000_000, **kw):
    fields = dict(
        close_id=close_id, subscription_id=sub.subscription_id, market_index=0, realized_pnl=pnl,
        kind="full", closed_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    fields.update(kw)
    return CloseReport(**fields)


def test_same_close_twice_is_recorded_once_and_another_body_conflicts():
    sub = SubscriptionFactory()
    first = record_close(report(sub))
    again = record_close(report(sub))
    assert first.created and not again.created
    assert again.distribution.pk == first.distribution.pk
    with pytest.raises(Conflict):
        record_close(report(sub, pnl=2_000_000))
    assert TradeClose.objects.count() == 1 and Distribution.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("kind", {"kind": "sideways"}),
        ("market_index", {"market_index": 70_000}),
        ("realized_pnl", {"realized_pnl": 2**63}),
        ("closed_at", {"closed_at": datetime(2026, 11, 1)}),
        ("close_id", {"close_id": ""}),
    ],
)
def test_bad_close_changes_nothing(field, change):
    sub = SubscriptionFactory()
    with pytest.raises(InvalidInput) as error:
        record_close(report(sub, **change))
    assert error.value.field == field
    sub.refresh_from_db()
    assert (TradeClose.objects.count(), Distribution.objects.count(), sub.cumulative_pnl) == (0, 0, 0)


def test_unknown_subscription_is_not_found():
    with pytest.raises(NotFound):
        record_close(CloseReport("c", "nope", 0, 1, "full", datetime.now(UTC)))


def test_high_water_mark_through_intake():
    sub = SubscriptionFactory(bot__policy=Policy.HIGH_WATER_MARK, bot__profit_share_bps=1_000)
    shares = []
    for n, pnl in enumerate((200_000_000, -150_000_000, 100_000_000, 150_000_000)):
        result = record_close(report(sub, close_id=f"h-{n}", pnl=pnl))
        shares.append(result.distribution.share if result.distribution else 0)
    assert shares == [20_000_000, 0, 0, 10_000_000]
    sub.refresh_from_db()
    assert (sub.cumulative_pnl, sub.high_water_mark) == (300_000_000, 300_000_000)


def test_partial_closes_and_flips_each_owe_their_own_realized_pnl():
    sub = SubscriptionFactory()
    shares = [
        record_close(report(sub, close_id=f"p-{n}", pnl=pnl, kind=kind)).distribution.share
        for n, (pnl, kind) in enumerate([(3_000_000, "partial"), (5_000_000, "partial"), (2_000_000, "flip")])
    ]
    assert shares == [300_000, 500_000, 200_000]


def test_rate_decrease_applies_at_once_increase_after_the_timelock(settings):
    publish_bot(bot_id="b", creator_wallet=CREATOR, name="Bot", profit_share_bps=800, policy="per_trade", actor="t")
    sub = create_subscription(
        subscription_id="s", bot_id="b", subscriber_wallet=WALLET, drift_subaccount_id=0, actor="t"
    ).subscription
    publish_bot(bot_id="b", creator_wallet=CREATOR, name="Bot", profit_share_bps=500, policy="per_trade", actor="t")
    sub.refresh_from_db()
    assert sub.profit_share_bps == 500  # decrease: at once
    publish_bot(bot_id="b", creator_wallet=CREATOR, name="Bot", profit_share_bps=1_000, policy="per_trade", actor="t")
    sub.refresh_from_db()
    assert (sub.profit_share_bps, sub.pending_bps) == (500, 1_000)
    assert record_close(report(sub, close_id="before")).distribution.share == 50_000
    Subscription.objects.filter(pk=sub.pk).update(pending_effective_at=timezone.now() - timedelta(seconds=1))
    after = record_close(report(sub, close_id="after")).distribution
    assert (after.share, after.profit_share_bps) == (100_000, 1_000)
    new_sub = create_subscription(
        subscription_id="s2", bot_id="b", subscriber_wallet=WALLET, drift_subaccount_id=1, actor="t"
    ).subscription
    assert new_sub.profit_share_bps == 1_000  # a new subscriber agrees to today's rate


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"creator_wallet": "0OIl-not-base58"}, "creator_wallet"),
        ({"creator_wallet": "1111"}, "creator_wallet"),
        ({"profit_share_bps": 1_001}, "profit_share_bps"),
        ({"profit_share_bps": -1}, "profit_share_bps"),
        ({"policy": "whatever"}, "policy"),
        ({"name": "  "}, "name"),
    ],
)
def test_publishing_bad_terms_is_refused_and_writes_nothing(kwargs, field):
    fields = dict(bot_id="b", creator_wallet=CREATOR, name="Bot", profit_share_bps=500, policy="per_trade", actor="t")
    fields.update(kwargs)
    with pytest.raises(InvalidInput) as error:
        publish_bot(**fields)
    assert error.value.field == field
    from profitshare.models import CreatorWallet, PublishedBot

    assert (PublishedBot.objects.count(), CreatorWallet.objects.count(), AuditEvent.objects.count()) == (0, 0, 0)


def test_subscription_replay_and_conflict():
    publish_bot(bot_id="b", creator_wallet=CREATOR, name="Bot", profit_share_bps=500, policy="per_trade", actor="t")
    first = create_subscription(subscription_id="s", bot_id="b", subscriber_wallet=WALLET, drift_subaccount_id=0, actor="t")
    again = create_subscription(subscription_id="s", bot_id="b", subscriber_wallet=WALLET, drift_subaccount_id=0, actor="t")
    assert first.created and not again.created
    assert again.subscription.agent_wallet.pubkey == first.subscription.agent_wallet.pubkey
    with pytest.raises(Conflict):
        create_subscription(subscription_id="s", bot_id="b", subscriber_wallet=WALLET, drift_subaccount_id=3, actor="t")
    with pytest.raises(InvalidInput):
        create_subscription(subscription_id="x", bot_id="b", subscriber_wallet=WALLET, drift_subaccount_id=70_000, actor="t")
    with pytest.raises(NotFound):
        create_subscription(subscription_id="y", bot_id="nope", subscriber_wallet=WALLET, drift_subaccount_id=0, actor="t")
    assert Subscription.objects.count() == 1


def test_audit_events_are_append_only_even_in_sql():
    event = AuditEvent.objects.create(entity="x", entity_id="1", actor="t")
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    if connection.vendor == "postgresql":
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE profitshare_auditevent SET actor = 'x'")


def test_database_refuses_unbalanced_distribution_amounts():
    sub = SubscriptionFactory()
    distribution = record_close(report(sub)).distribution
    with pytest.raises(IntegrityError), transaction.atomic():
        Distribution.objects.filter(pk=distribution.pk).update(paid=1)  # paid + owed > share


def test_the_same_instant_in_another_timezone_is_a_replay_not_a_conflict():
    from datetime import timezone as tz

    sub = SubscriptionFactory()
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    record_close(report(sub, closed_at=at))
    again = record_close(report(sub, closed_at=at.astimezone(tz(timedelta(hours=1)))))
    assert not again.created


def test_acknowledging_an_alert_records_who_and_when_once():
    from profitshare.services.alerts import acknowledge_alert, raise_alert

    alert = raise_alert("iou_created", "IOU 1", amount=5)
    acknowledge_alert(alert.pk, actor="admin:alice")
    with pytest.raises(Conflict, match="admin:alice"):
        acknowledge_alert(alert.pk, actor="admin:bob")
    alert.refresh_from_db()
    assert alert.acknowledged_by == "admin:alice" and alert.acknowledged_at is not None
    assert AuditEvent.objects.filter(entity="alert", entity_id=str(alert.pk)).count() == 1
    with pytest.raises(NotFound):
        acknowledge_alert(999_999, actor="admin:alice")
