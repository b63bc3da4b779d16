"""The admin console and the legs of split shares: the platform treasury's page (fees paid,
owed, carried), whom each IOU owes (its leg's role and wallet; an IOU without a leg owes the
creator) in the debts table, filtered by role or recipient wallet, and on the IOU and
distribution pages; a bad role is a clear error that lists nothing. The engine's own IOUs per
leg (``split_payouts``, on the local node) and rows set as the engine leaves them."""

from __future__ import annotations

import re

import pytest

from profitshare.models import IOU, CarryReason, Distribution, LegCarry, LegRole
from tests.factories import SubscriptionFactory
from tests.pages.conftest import page_text as text
from tests.pages.conftest import sign_in_as
from tests.pages.splits import (
    Chain,
    address,
    configure,
    leg_of,
    link_chain,
    owe,
    pay_all,
    record,
    settle,
)

pytestmark = pytest.mark.django_db


def shown(response) -> list[int]:
    return [row.record.pk for row in response.context["table"].paginated_rows]


@pytest.fixture
def debts(settings):
    """Three IOUs of one distribution of a creator referred once: the platform's leg, level
    1's leg, and one recorded without a leg (the creator's); platform fees paid and carried
    on two other distributions."""
    treasury, level1 = address(), address()
    configure(settings, treasury)
    sub = SubscriptionFactory(bot__name="Momentum")
    link_chain(sub.bot.creator.address, [level1])
    chain = Chain(sub, treasury, [level1])
    paid = record(sub, 10_000_000)  # fee 0.015 USDC, paid
    pay_all(paid)
    carried = record(
        sub, 2_000_000
    )  # fee 0.003 USDC, carried until the treasury has a token account
    settle(leg_of(carried, LegRole.PLATFORM), carried=3_000)
    LegCarry.objects.create(
        subscription=sub,
        wallet=treasury,
        role=LegRole.PLATFORM,
        amount=3_000,
        reason=CarryReason.NO_TOKEN_ACCOUNT,
    )
    owed = record(sub, 40_000_000)  # share 4 USDC: fee 0.06, level 1 0.2, the creator 3.74
    Distribution.objects.filter(pk=owed.pk).update(status="owed")
    ious = {
        LegRole.PLATFORM: owe(leg_of(owed, LegRole.PLATFORM), owed, 60_000),
        LegRole.REFERRAL_1: owe(leg_of(owed, LegRole.REFERRAL_1), owed, 200_000),
        LegRole.CREATOR: owe(None, owed, 3_740_000),
    }
    return chain, owed, ious


def test_the_treasury_page_shows_the_platforms_fees(staff_client, debts):
    chain, owed, _ = debts
    response = staff_client.get("/console/treasury/")
    assert response.status_code == 200
    treasury = response.context["treasury"]
    assert (
        treasury["wallet"],
        treasury["legs"],
        treasury["paid"],
        treasury["owed"],
        treasury["carried"],
        treasury["carried_no_token_account"],
    ) == (chain.treasury, 3, 15_000, 60_000, 3_000, 3_000)
    body = text(response)
    assert "Fees paid 0.015000" in body and "Fees owed 0.060000" in body
    assert "Fees carried 0.003000" in body and "Fees voided 0.000000" in body
    assert "0.003000 of it until the treasury has a USDC token account" in body
    html = response.content.decode()
    assert f'<code id="treasury-wallet">{chain.treasury}</code>' in html
    assert 'href="/console/?role=platform"' in html
    assert 'href="/console/treasury/">Treasury</a>' in html  # in the staff nav


def test_without_a_treasury_the_page_says_so(staff_client, settings):
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = 0, ""
    response = staff_client.get("/console/treasury/")
    assert response.status_code == 200 and response.context["treasury"] is None
    assert "No platform treasury is configured" in text(response)


def test_a_treasury_nothing_was_paid_to_shows_zeros(staff_client, settings):
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = 100, address()
    treasury = staff_client.get("/console/treasury/").context["treasury"]
    assert (treasury["legs"], treasury["paid"], treasury["owed"], treasury["carried"]) == (
        0,
        0,
        0,
        0,
    )


def test_each_iou_says_whom_it_owes_one_without_a_leg_the_creator(staff_client, debts):
    chain, _, ious = debts
    response = staff_client.get("/console/")
    html = response.content.decode()
    assert sorted(shown(response)) == sorted(iou.pk for iou in ious.values())
    for role, wallet, label in (
        (LegRole.PLATFORM, chain.treasury, "Platform fee"),
        (LegRole.REFERRAL_1, chain.referrers[0], "Referral, level 1"),
        (LegRole.CREATOR, chain.creator, "Creator"),  # recorded without a leg: the creator's
    ):
        row = re.search(rf'<tr id="iou-{ious[role].pk}".*?</tr>', html).group(0)
        assert f'data-role="{role}">{label}</span>' in row and f'title="{wallet}"' in row
    assert "Owed to" in html


@pytest.mark.django_db(transaction=True)
def test_the_engines_iou_per_leg_each_say_whom_they_owe(staff_client, split_payouts):
    """The engine on the local node owed a payout for lack of SOL: an IOU per leg that owes
    (level 3's leg is carried for it: no token account)."""
    ious = {iou.recipient_role: iou for iou in IOU.objects.select_related("leg", "creator")}
    assert set(ious) == {LegRole.CREATOR, LegRole.PLATFORM, LegRole.REFERRAL_1, LegRole.REFERRAL_2}
    response = staff_client.get("/console/")
    assert (response.context["totals"]["count"], response.context["totals"]["remaining"]) == (
        4,
        3_960_000,
    )
    html = response.content.decode()
    for role, wallet, label, amount in (
        (LegRole.CREATOR, split_payouts.creator, "Creator", "3.620000"),
        (LegRole.PLATFORM, split_payouts.treasury, "Platform fee", "0.060000"),
        (LegRole.REFERRAL_1, split_payouts.levels[0], "Referral, level 1", "0.200000"),
        (LegRole.REFERRAL_2, split_payouts.levels[1], "Referral, level 2", "0.080000"),
    ):
        row = re.search(rf'<tr id="iou-{ious[role].pk}".*?</tr>', html).group(0)
        assert f'data-role="{role}">{label}</span>' in row and f'title="{wallet}"' in row
        assert amount in row and "insufficient_sol" in row
    assert shown(staff_client.get("/console/?role=platform")) == [ious[LegRole.PLATFORM].pk]
    level2 = staff_client.get(f"/console/?recipient={split_payouts.levels[1]}")
    assert shown(level2) == [ious[LegRole.REFERRAL_2].pk]
    detail = staff_client.get(f"/console/distributions/{split_payouts.owed.pk}/")
    assert [(leg.role, leg.owed, leg.carried) for leg in detail.context["legs"]] == [
        (LegRole.CREATOR, 3_620_000, 0),
        (LegRole.PLATFORM, 60_000, 0),
        (LegRole.REFERRAL_1, 200_000, 0),
        (LegRole.REFERRAL_2, 80_000, 0),
        (LegRole.REFERRAL_3, 0, 40_000),
    ]
    assert "Referral, level 2 " + split_payouts.levels[1] in text(detail)


@pytest.mark.django_db(transaction=True)
def test_the_treasury_page_after_real_payouts(staff_client, split_payouts):
    response = staff_client.get("/console/treasury/")
    treasury = response.context["treasury"]
    assert (treasury["legs"], treasury["paid"], treasury["owed"], treasury["carried"]) == (
        2,
        150_000,
        60_000,
        0,
    )
    body = text(response)
    assert "Fees paid 0.150000" in body and "Fees owed 0.060000" in body
    assert "Fees carried 0.000000" in body and "token account" not in body


def test_debts_filter_by_recipient_role_and_wallet(staff_client, debts):
    chain, _, ious = debts
    assert shown(staff_client.get("/console/?role=platform")) == [ious[LegRole.PLATFORM].pk]
    assert shown(staff_client.get("/console/?role=referral_1")) == [ious[LegRole.REFERRAL_1].pk]
    assert shown(staff_client.get("/console/?role=creator")) == [ious[LegRole.CREATOR].pk]
    assert shown(staff_client.get("/console/?role=referral_2")) == []
    assert shown(staff_client.get(f"/console/?recipient={chain.referrers[0]}")) == [
        ious[LegRole.REFERRAL_1].pk
    ]
    assert shown(staff_client.get(f"/console/?recipient={chain.creator}")) == [
        ious[LegRole.CREATOR].pk
    ]
    platform = staff_client.get("/console/?role=platform")
    assert (platform.context["totals"]["count"], platform.context["totals"]["remaining"]) == (
        1,
        60_000,
    )
    fragment = staff_client.get(
        "/console/?role=referral_1", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="debts"
    )
    assert b"<html" not in fragment.content and fragment.content.lstrip().startswith(
        b'<section id="debts">'
    )
    assert b'<option value="referral_1" selected>' in fragment.content


def test_a_bad_role_is_a_clear_error_and_lists_nothing(staff_client, debts):
    response = staff_client.get("/console/?role=treasurer")
    assert response.status_code == 200
    assert shown(response) == [] and response.context["totals"]["count"] == 0
    assert "role: Select a valid choice. treasurer is not one of the available choices." in text(
        response
    )
    # a bulk retry of that filter claims nothing
    bulk = staff_client.post("/console/ious/retry/", {"role": "treasurer"})
    assert bulk.status_code == 302
    assert "Bulk retry: 0 queued, 0 skipped." in text(staff_client.get(bulk["Location"]))


def test_the_distribution_and_iou_pages_show_the_legs_and_whom_each_iou_owes(staff_client, debts):
    chain, owed, ious = debts
    page = staff_client.get(f"/console/distributions/{owed.pk}/")
    assert [(leg.role, leg.amount) for leg in page.context["legs"]] == [
        (LegRole.CREATOR, 3_740_000),
        (LegRole.PLATFORM, 60_000),
        (LegRole.REFERRAL_1, 200_000),
    ]
    body = text(page)
    assert (
        "Platform fee " + chain.treasury in body
        and "Referral, level 1 " + chain.referrers[0] in body
    )
    assert "1.50 %" in body and "the rest" in body
    iou = staff_client.get(f"/console/ious/{ious[LegRole.REFERRAL_1].pk}/")
    assert "Owed to Referral, level 1 " + chain.referrers[0] in text(iou)
    creator = staff_client.get(f"/console/ious/{ious[LegRole.CREATOR].pk}/")
    assert "Owed to Creator " + chain.creator in text(creator)


def test_the_treasury_page_is_for_staff_only(client, debts):
    chain, _, _ = debts
    sign_in_as(client, chain.treasury)  # the treasury's wallet session is not staff
    response = client.get("/console/treasury/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert 'href="/console/treasury/"' not in client.get("/earnings/").content.decode()
