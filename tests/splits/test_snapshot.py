"""The split terms in force are recorded on a distribution when intake computes its share
(docs/design.md, "Split terms are snapshotted"); later referrals and settings change later
distributions only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from solders.keypair import Keypair

from profitshare.models import AuditEvent, Distribution, LegRole
from profitshare.services.intake import CloseReport, record_close
from profitshare.services.referrals import link_referral
from profitshare.services.splits import NO_SPLITS, SplitTerms, split_share, terms_of
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

TREASURY = str(Keypair().pubkey())


def wallets(n: int) -> list[str]:
    return [str(Keypair().pubkey()) for _ in range(n)]


def close(sub, close_id: str, pnl: int = 10_000_000):
    report = CloseReport(close_id, sub.subscription_id, 0, pnl, "full", datetime(2026, 11, 1, tzinfo=UTC))
    return record_close(report, actor="test")


@pytest.fixture
def sub(settings):
    settings.QV_REFERRAL_BPS = (500, 200, 100)
    settings.QV_PLATFORM_FEE_BPS = 0
    settings.QV_PLATFORM_TREASURY = ""
    return SubscriptionFactory()


def test_a_distribution_records_the_rates_and_the_creators_chain(sub, settings):
    creator = sub.bot.creator.address
    l1, l2, l3, l4 = wallets(4)
    for wallet, referrer in ((creator, l1), (l1, l2), (l2, l3), (l3, l4)):
        link_referral(wallet, referrer)
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = 150, TREASURY
    dist = close(sub, "c-1").distribution
    expected = {"platform_fee_bps": 150, "treasury": TREASURY, "referral": [[l1, 500], [l2, 200], [l3, 100]]}
    assert dist.split_terms == expected
    stored = Distribution.objects.get(pk=dist.pk)
    assert stored.split_terms == expected  # the row, not only the instance
    event = AuditEvent.objects.get(entity="distribution", entity_id=str(dist.pk))
    assert event.data["split_terms"] == expected
    # 10 % of 10 USDC = 1 USDC: 1.5 % platform, 5 / 2 / 1 % referrals, the rest the creator's
    legs = split_share(stored.share, creator=creator, terms=terms_of(stored.split_terms))
    assert {leg.role: leg.amount for leg in legs} == {
        LegRole.CREATOR: 905_000, LegRole.PLATFORM: 15_000, LegRole.REFERRAL_1: 50_000,
        LegRole.REFERRAL_2: 20_000, LegRole.REFERRAL_3: 10_000,
    }


def test_a_creator_nobody_referred_records_an_empty_chain(sub):
    dist = close(sub, "c-1").distribution
    assert dist.split_terms == {"platform_fee_bps": 0, "treasury": "", "referral": []}
    assert terms_of(dist.split_terms) == SplitTerms()


def test_later_referrals_and_settings_change_later_distributions_only(sub, settings):
    creator = sub.bot.creator.address
    l1, l2 = wallets(2)
    link_referral(creator, l1)
    first = close(sub, "c-1").distribution
    terms_before = {"platform_fee_bps": 0, "treasury": "", "referral": [[l1, 500]]}
    assert first.split_terms == terms_before

    link_referral(l1, l2)
    settings.QV_REFERRAL_BPS = (900, 50, 0)
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = 300, TREASURY
    second = close(sub, "c-2").distribution

    assert Distribution.objects.get(pk=first.pk).split_terms == terms_before
    assert Distribution.objects.get(pk=second.pk).split_terms == {
        "platform_fee_bps": 300, "treasury": TREASURY, "referral": [[l1, 900], [l2, 50]],
    }
    # a replay of the first close answers the first distribution, terms unchanged
    replay = close(sub, "c-1")
    assert not replay.created and replay.distribution.split_terms == terms_before


def test_a_close_that_owes_nothing_reads_no_chain(sub):
    with CaptureQueriesContext(connection) as queries:
        result = close(sub, "c-loss", pnl=-5_000_000)
    assert result.distribution is None
    assert not any("WITH RECURSIVE" in q["sql"] for q in queries.captured_queries)


def test_distributions_from_before_splits_have_no_splits(sub):
    dist = close(sub, "c-1").distribution
    Distribution.objects.filter(pk=dist.pk).update(split_terms={})  # as the migration leaves old rows
    stored = Distribution.objects.get(pk=dist.pk)
    assert terms_of(stored.split_terms) is NO_SPLITS
    legs = split_share(stored.share, creator=sub.bot.creator.address, terms=terms_of(stored.split_terms))
    assert [(leg.role, leg.amount) for leg in legs] == [(LegRole.CREATOR, stored.share)]


def test_intake_records_each_leg_as_a_row_of_its_distribution(sub, settings):
    from profitshare.models import DistributionLeg

    creator = sub.bot.creator.address
    l1, l2 = wallets(2)
    link_referral(creator, l1)
    link_referral(l1, l2)
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = 150, TREASURY
    dist = close(sub, "c-1", pnl=33_333_333).distribution  # share 3,333,333
    rows = list(DistributionLeg.objects.filter(distribution=dist).order_by("pk").values_list(
        "role", "wallet", "bps", "amount", "paid", "owed", "carried", "carry_in"))
    assert rows == [
        (LegRole.CREATOR, creator, None, 3_333_333 - 49_999 - 166_666 - 66_666, 0, 3_333_333 - 49_999 - 166_666 - 66_666, 0, 0),
        (LegRole.PLATFORM, TREASURY, 150, 49_999, 0, 49_999, 0, 0),
        (LegRole.REFERRAL_1, l1, 500, 166_666, 0, 166_666, 0, 0),
        (LegRole.REFERRAL_2, l2, 200, 66_666, 0, 66_666, 0, 0),
    ]
    assert sum(row[3] for row in rows) == dist.share == 3_333_333  # each leg floored, the rest the creator's
    event = AuditEvent.objects.get(entity="distribution", entity_id=str(dist.pk))
    assert event.data["legs"][0] == [LegRole.CREATOR, creator, rows[0][3]]


def test_a_creator_without_splits_has_one_leg_the_whole_share(sub):
    from profitshare.models import DistributionLeg

    dist = close(sub, "c-1").distribution
    (leg,) = DistributionLeg.objects.filter(distribution=dist)
    assert (leg.role, leg.wallet, leg.amount, leg.owed) == (LegRole.CREATOR, sub.bot.creator.address, dist.share, dist.share)
