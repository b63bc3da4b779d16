"""The data step of the migration that adds legs: every distribution recorded before legs
existed gets one creator leg with its own amounts, its IOUs owe that leg and its payout
attempts paid it."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from profitshare.models import IOU, Distribution, DistributionLeg, LegRole, PayoutAttempt
from profitshare.services.engine import process_distribution
from tests.world import make_world, owe_for_lack_of_sol

pytestmark = pytest.mark.django_db(transaction=True)

migration = importlib.import_module("profitshare.migrations.0012_legs")


def test_old_distributions_get_a_creator_leg_with_their_amounts(localnet, gateway):
    paid = make_world(localnet).close(30_000_000).distribution
    process_distribution(paid.pk, gateway=gateway)
    _, owed, iou = owe_for_lack_of_sol(localnet, gateway)
    # the rows as they were before legs existed
    IOU.objects.update(leg=None)
    PayoutAttempt.objects.update(legs=[])
    DistributionLeg.objects.all().delete()

    migration.creator_legs(apps, None)

    for dist in Distribution.objects.all():
        (leg,) = DistributionLeg.objects.filter(distribution=dist)
        assert (leg.role, leg.wallet, leg.bps) == (LegRole.CREATOR, dist.creator.address, None)
        assert (leg.amount, leg.carry_in, leg.paid, leg.owed, leg.carried, leg.voided) == (
            dist.share, dist.carry_in, dist.paid, dist.owed, dist.carried, dist.voided)
        assert leg.created_at == dist.created_at
    iou.refresh_from_db()
    assert iou.leg.distribution_id == owed.pk
    (attempt,) = PayoutAttempt.objects.filter(distribution=paid)
    assert attempt.legs == [[DistributionLeg.objects.get(distribution=paid).pk, attempt.destination_owner, 3_000_000]]
    migration.creator_legs(apps, None)  # run again (a retried deploy): nothing doubles
    assert DistributionLeg.objects.count() == Distribution.objects.count()


def test_the_running_totals_of_the_legs_are_backfilled_and_the_engine_keeps_them(localnet, gateway, splits):
    from profitshare.models import LegTotals
    from profitshare.services import leg_totals

    totals = importlib.import_module("profitshare.migrations.0015_leg_totals")
    world = splits["world"]()
    process_distribution(world.close(100_000_000).distribution.pk, gateway=gateway)
    owed = splits["world"](lamports=1_000_000).close(40_000_000).distribution  # too little SOL: owed
    process_distribution(owed.pk, gateway=gateway)
    LegTotals.objects.all().delete()  # the table as the migration finds it

    totals.backfill(apps, None)

    sums = leg_totals.rollup_sums()
    assert sums == leg_totals.ledger_sums()
    assert sums[(owed.creator_id, owed.creator.address, LegRole.CREATOR)] == (1, 3_620_000, 0, 3_620_000, 0)
    assert sums[(world.subscription.bot.creator_id, str(splits[LegRole.PLATFORM]), LegRole.PLATFORM)] == (
        1, 150_000, 150_000, 0, 0)
    totals.backfill(apps, None)  # run again: nothing doubles
    assert leg_totals.rollup_sums() == sums


def test_the_legs_per_day_are_backfilled_and_the_engine_keeps_them(localnet, gateway, splits):
    from profitshare.models import LegDay
    from profitshare.services import leg_totals

    days = importlib.import_module("profitshare.migrations.0017_leg_days")
    world = splits["world"]()
    paid = world.close(100_000_000).distribution
    process_distribution(paid.pk, gateway=gateway)
    kept = leg_totals.rollup_sums()
    assert kept == leg_totals.ledger_sums()  # the engine kept the days as it paid
    LegDay.objects.all().delete()  # the table as the migration finds it

    days.backfill(apps, None)

    assert leg_totals.rollup_sums() == kept
    day = paid.created_at.date()
    assert LegDay.objects.get(wallet=str(splits[LegRole.PLATFORM]), role=LegRole.PLATFORM, day=day).paid == 150_000
    days.backfill(apps, None)  # run again: nothing doubles
    assert leg_totals.rollup_sums() == kept
