"""``/earnings/``: every wallet paid a leg of a split share (a referrer, the platform treasury, a
creator) signs in with SIWS and sees its totals per role (carried amounts and why), the last 30
days, the history of its legs with filters and keyset pages, and the CSV; a wallet without legs
sees a note; the creator's dashboard shows where its shares went. The legs come from the real
engine on the local node (``split_payouts``: intake with a referral chain linked, then
``process_distribution``), or, for the cases the engine takes long to reach (many legs, ties,
a carry for dust), from intake with the legs then moved to the figures the engine leaves."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from solders.keypair import Keypair

from profitshare.models import (
    IOU,
    AttemptStatus,
    CarryReason,
    Distribution,
    DistributionLeg,
    IouReason,
    LegCarry,
    LegRole,
    PayoutAttempt,
)
from profitshare.services import leg_totals
from profitshare.views.common import SESSION_WALLET
from tests.factories import AgentWalletFactory, PublishedBotFactory, SubscriptionFactory
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


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@dataclass
class Referrer:
    """Level 1 of a creator's chain (its keypair: it signs in), who is a creator too."""

    key: Keypair
    chain: Chain
    paid: Distribution  # all legs paid
    owed: Distribution  # its leg owed, with an IOU
    carried: Distribution  # its leg carried until it has a token account
    own: Distribution  # a close of its own bot: its creator's leg, paid

    @property
    def wallet(self) -> str:
        return str(self.key.pubkey())


@pytest.fixture
def chain(settings) -> Chain:
    """A 10 % bot whose creator was referred three levels up, and a 1.5 % platform fee."""
    treasury, key = address(), Keypair()
    referrers = [str(key.pubkey()), address(), address()]
    configure(settings, treasury)
    sub = SubscriptionFactory(bot__name="Momentum")
    link_chain(sub.bot.creator.address, referrers)
    return Chain(sub, treasury, referrers, key)


@pytest.fixture
def referrer(chain) -> Referrer:
    sub, (l1, l2, _) = chain.subscription, chain.referrers
    paid = record(sub, 10_000_000)  # share 1 USDC: level 1 gets 5 %, 0.05 USDC
    pay_all(paid)
    owed = record(sub, 20_000_000)  # level 1: 0.1 USDC, owed
    owe(leg_of(owed, LegRole.REFERRAL_1), owed, 100_000)
    Distribution.objects.filter(pk=owed.pk).update(status="owed")
    carried = record(sub, 4_000_000)  # level 1: 0.02 USDC, carried: no token account
    settle(leg_of(carried, LegRole.REFERRAL_1), carried=20_000)
    LegCarry.objects.create(
        subscription=sub,
        wallet=l1,
        role=LegRole.REFERRAL_1,
        amount=20_000,
        reason=CarryReason.NO_TOKEN_ACCOUNT,
    )
    settle(leg_of(carried, LegRole.REFERRAL_2), carried=8_000)
    LegCarry.objects.create(
        subscription=sub, wallet=l2, role=LegRole.REFERRAL_2, amount=8_000
    )  # dust
    own_sub = SubscriptionFactory(
        bot=PublishedBotFactory(creator__address=l1, name="Level one's bot")
    )
    own = record(own_sub, 10_000_000)  # its own chain: l2 is its level 1, l3 its level 2
    pay_all(own)
    return Referrer(chain.key, chain, paid, owed, carried, own)


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for url in ("/earnings/", "/earnings/history.csv?role=platform"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/signin/?next=%2Fearnings%2F")


@pytest.mark.django_db(transaction=True)
def test_a_referrer_signs_in_with_siws_and_sees_what_the_engine_paid_it(client, split_payouts):
    """A wallet that published no bot: the real challenge, signed with its key; then its legs
    as the engine left them on the local node (one paid in the atomic payout, one owed)."""
    wallet = split_payouts.levels[0]
    response = client.post("/signin/challenge/", {"address": wallet, "next": "/earnings/"})
    nonce = re.search(r'name="nonce" value="([^"]+)"', response.content.decode()).group(1)
    signature = str(split_payouts.referrer.sign_message(response.context["message"].encode()))
    signed = client.post(
        "/signin/verify/", {"nonce": nonce, "signature": signature, "next": "/earnings/"}
    )
    assert signed.status_code == 302 and signed["Location"] == "/earnings/"
    assert client.session[SESSION_WALLET] == wallet
    page = client.get("/earnings/")
    assert page.status_code == 200
    body, html = text(page), page.content.decode()
    assert 'href="/earnings/">Earnings</a>' in html  # the nav links it for a signed-in wallet
    # 5 % of the shares (10 and 4 USDC): 0.5 paid in the payout, 0.2 owed for lack of SOL
    assert "Paid 0.500000 USDC over 2 legs" in body and "Owed to you 0.200000" in body
    assert "Referral, level 1 2 0.700000 0.500000 0.200000 0.000000" in body
    (landed,) = PayoutAttempt.objects.filter(
        distribution=split_payouts.paid, status=AttemptStatus.LANDED
    )
    rows = page.context["history"]["rows"]
    assert [(r["distribution_id"], r["status"], r["signatures"]) for r in rows] == [
        (split_payouts.owed.pk, "owed", []),
        (split_payouts.paid.pk, "paid", [landed.signature]),
    ]
    assert f'title="{landed.signature}"' in html
    exported = csv_rows(client.get("/earnings/history.csv"))
    assert [(r["paid_usdc"], r["owed_usdc"], r["signatures"]) for r in exported] == [
        ("0.000000", "0.200000", ""),
        ("0.500000", "0.000000", landed.signature),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_wallet_without_a_token_account_sees_its_legs_carried_for_it(client, split_payouts):
    sign_in_as(client, split_payouts.levels[2])
    response = client.get("/earnings/")
    (level3,) = response.context["roles"]
    assert (level3.role, level3.earned, level3.paid, level3.owed, level3.carried) == (
        LegRole.REFERRAL_3,
        140_000,
        0,
        0,
        140_000,
    )
    assert level3.carried_no_token_account == 140_000
    body = text(response)
    assert "0.140000 carried until your wallet has a USDC token account" in body
    assert "0.140000 USDC is carried until your wallet has a USDC token account" in body
    assert {r["status"] for r in response.context["history"]["rows"]} == {"carried"}


@pytest.mark.django_db(transaction=True)
def test_the_treasury_sees_the_fees_the_engine_paid_and_owes(client, split_payouts):
    sign_in_as(client, split_payouts.treasury)
    response = client.get("/earnings/")
    assert [(t.role, t.legs, t.earned, t.paid, t.owed) for t in response.context["roles"]] == [
        (LegRole.PLATFORM, 2, 210_000, 150_000, 60_000)
    ]
    assert "Platform fee · 1.50 %" in text(response)


def test_totals_per_role_and_why_it_is_carried(client, referrer):
    sign_in_as(client, referrer.wallet)
    response = client.get("/earnings/")
    roles = [
        (t.role, t.legs, t.earned, t.paid, t.owed, t.carried, t.carried_no_token_account)
        for t in response.context["roles"]
    ]
    assert roles == [
        (
            LegRole.CREATOR,
            1,
            915_000,
            915_000,
            0,
            0,
            0,
        ),  # 1 USDC less 1.5 % and its own levels 1, 2
        (LegRole.REFERRAL_1, 3, 50_000 + 100_000 + 20_000, 50_000, 100_000, 20_000, 20_000),
    ]
    overall = response.context["overall"]
    assert (overall["paid"], overall["owed"], overall["carried"]) == (965_000, 100_000, 20_000)
    body = text(response)
    assert "Paid 0.965000" in body and "Owed to you 0.100000" in body and "Carried 0.020000" in body
    assert "0.020000 carried until your wallet has a USDC token account" in body
    # level 2's carry is dust: carried, without the token-account note
    sign_in_as(client, referrer.chain.referrers[1])
    second = client.get("/earnings/")
    level2 = next(t for t in second.context["roles"] if t.role == LegRole.REFERRAL_2)
    assert (level2.carried, level2.carried_no_token_account) == (8_000, 0)
    assert "token account" not in text(second)


def test_what_is_owed_until_the_wallet_has_a_token_account_is_said_so(client, referrer):
    IOU.objects.filter(leg__distribution=referrer.owed).update(reason=IouReason.NO_TOKEN_ACCOUNT)
    sign_in_as(client, referrer.wallet)
    response = client.get("/earnings/")
    level1 = next(t for t in response.context["roles"] if t.role == LegRole.REFERRAL_1)
    assert (level1.owed, level1.owed_no_token_account, level1.carried_no_token_account) == (100_000, 100_000, 20_000)
    body = text(response)
    assert "0.100000 owed until your wallet has a USDC token account" in body
    assert ("0.020000 USDC is carried and 0.100000 USDC is owed until your wallet has a USDC token account"
            in body)
    IOU.objects.filter(leg__distribution=referrer.owed).update(status="paid")  # a paid IOU waits for nothing
    level1 = next(t for t in client.get("/earnings/").context["roles"] if t.role == LegRole.REFERRAL_1)
    assert level1.owed_no_token_account == 0


def test_the_chart_shows_the_last_30_days_per_role(client, referrer):
    DistributionLeg.objects.filter(distribution=referrer.owed).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    leg_totals.rebuild()  # the days follow the legs' staged dates
    sign_in_as(client, referrer.wallet)
    response = client.get("/earnings/")
    daily = response.context["daily"]
    assert len(daily) == 30 and daily[-1]["day"] == timezone.now().date()
    assert (daily[-1]["earned"], daily[-1]["paid"]) == (915_000 + 50_000 + 20_000, 965_000)
    assert sum(d["earned"] for d in daily) == 985_000  # the 40-day-old leg is outside the window
    chart = response.context["chart"]
    assert len(chart["labels"]) == 30
    assert [(s["label"], s["data"][-1]) for s in chart["datasets"]] == [
        ("Creator", "0.915000"),
        ("Referral, level 1", "0.050000"),
    ]
    assert response.context["paid_30d"] == 965_000
    assert 'id="chart-data"' in response.content.decode()
    # totals still count it
    assert response.context["overall"]["owed"] == 100_000


def test_history_lists_every_leg_and_filters_by_role(client, referrer):
    sign_in_as(client, referrer.wallet)
    rows = client.get("/earnings/").context["history"]["rows"]
    assert [(r["distribution_id"], r["role"], r["status"]) for r in rows] == [
        (referrer.own.pk, LegRole.CREATOR, "paid"),
        (referrer.carried.pk, LegRole.REFERRAL_1, "carried"),
        (referrer.owed.pk, LegRole.REFERRAL_1, "owed"),
        (referrer.paid.pk, LegRole.REFERRAL_1, "paid"),
    ]
    html = client.get("/earnings/").content.decode()
    assert 'id="legs-table"' in html and "Momentum" in html and "Level one&#x27;s bot" in html
    assert "Referral, level 1 · 5.00 %" in html and "Carried (dust)" in html
    only = client.get("/earnings/?role=referral_1").context["history"]["rows"]
    assert {r["role"] for r in only} == {LegRole.REFERRAL_1} and len(only) == 3
    today = timezone.now().date()
    assert (
        client.get(f"/earnings/?date_to={today - timedelta(days=1)}").context["history"]["rows"]
        == []
    )
    assert (
        len(client.get(f"/earnings/?date_from={today}&role=creator").context["history"]["rows"])
        == 1
    )


def test_a_bad_filter_is_a_clear_error_and_lists_nothing(client, referrer):
    sign_in_as(client, referrer.wallet)
    response = client.get("/earnings/?role=treasurer")
    assert response.status_code == 200
    history = response.context["history"]
    assert not history["valid"] and history["rows"] == []
    assert "role: Select a valid choice. treasurer is not one of the available choices." in text(
        response
    )
    fragment = client.get(
        "/earnings/?date_from=yesterday", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="legs-rows"
    )
    assert b"<html" not in fragment.content and b'role="alert"' in fragment.content
    assert csv_rows(client.get("/earnings/history.csv?role=treasurer")) == []  # the header only


def test_history_pages_by_keyset_over_two_roles_plain_and_htmx(client, chain, monkeypatch):
    """Level 1 is a creator too: its legs of both roles interleave, several at the same instant
    (ties broken by id, across roles and across a page boundary)."""
    from profitshare.selectors import leg_earnings

    level1 = chain.referrers[0]
    own = SubscriptionFactory(bot=PublishedBotFactory(creator__address=level1))
    for n in range(30):
        record(chain.subscription if n % 2 else own, 10_000_000 + n * 100_000)
    base = timezone.now()
    legs = DistributionLeg.objects.filter(wallet=level1).order_by("pk")
    for n, leg in enumerate(legs):
        DistributionLeg.objects.filter(pk=leg.pk).update(
            created_at=base - timedelta(seconds=n // 4)
        )
    expected = list(legs.order_by("-created_at", "-pk").values_list("pk", flat=True))
    assert {leg.role for leg in legs} == {LegRole.CREATOR, LegRole.REFERRAL_1}
    sign_in_as(client, level1)
    page1 = client.get("/earnings/").context["history"]
    assert len(page1["rows"]) == 25 and page1["older"] and page1["newer"] is None
    second = client.get(
        f"/earnings/?after={page1['older']}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="legs-rows"
    )
    assert second.templates[0].name == "profitshare/earnings/_history_rows.html"
    assert (
        b"<html" not in second.content
        and b'id="legs-rows"' in second.content
        and b"<form" not in second.content
    )
    page2 = second.context["history"]
    assert len(page2["rows"]) == 5 and page2["older"] is None and page2["newer"]
    assert [r["pk"] for r in page1["rows"] + page2["rows"]] == expected
    assert {r["status"] for r in page1["rows"]} == {"pending"}  # recorded, not paid yet
    back = client.get(f"/earnings/?before={page2['newer']}").context["history"]
    assert [r["pk"] for r in back["rows"]] == [r["pk"] for r in page1["rows"]]
    assert back["newer"] is None and back["older"] == page1["older"]
    only = client.get("/earnings/?role=creator").context["history"]
    assert len(only["rows"]) == 15 and only["older"] is None
    assert client.get("/earnings/?after=garbage").status_code == 200
    monkeypatch.setattr(leg_earnings, "CSV_CHUNK", 7)  # the export reads in chunks, by keyset
    exported = csv_rows(client.get("/earnings/history.csv"))
    by_pk = dict(legs.values_list("distribution_id", "pk"))
    assert [by_pk[int(r["distribution_id"])] for r in exported] == expected


def _landed(distribution, legs, *, destination: str, amount: int) -> PayoutAttempt:
    sig = str(Keypair().sign_message(b"a payout"))
    return PayoutAttempt.objects.create(
        distribution=distribution,
        agent_wallet=AgentWalletFactory(),
        amount=amount,
        legs=legs,
        signature=sig,
        raw_transaction=b"\x00",
        blockhash="1" * 32,
        last_valid_block_height=1,
        destination_owner=destination,
        destination_ata=address(),
        status=AttemptStatus.LANDED,
        resolved_at=timezone.now(),
    )


def test_csv_has_every_leg_with_the_signatures_that_paid_it(client, referrer):
    l1 = referrer.wallet
    leg = leg_of(referrer.paid, LegRole.REFERRAL_1)
    creator_leg = leg_of(referrer.paid, LegRole.CREATOR)
    both = _landed(
        referrer.paid,
        [[creator_leg.pk, referrer.chain.creator, creator_leg.amount], [leg.pk, l1, leg.amount]],
        destination=referrer.chain.creator,
        amount=creator_leg.amount + leg.amount,
    )
    _landed(
        referrer.paid,
        [[creator_leg.pk, referrer.chain.creator, 1]],
        destination=referrer.chain.creator,
        amount=1,
    )
    # recorded before attempts named their legs: they paid the creator's leg
    legacy = _landed(referrer.own, [], destination=l1, amount=915_000)
    _landed(referrer.paid, [], destination=referrer.chain.creator, amount=905_000)
    sign_in_as(client, l1)
    response = client.get("/earnings/history.csv")
    assert (
        response.status_code == 200
        and response.streaming
        and response["Content-Type"].startswith("text/csv")
    )
    assert 'attachment; filename="quantumvault-legs-' in response["Content-Disposition"]
    rows = csv_rows(response)
    assert len(rows) == 4
    by_dist = {int(r["distribution_id"]): r for r in rows}
    paid = by_dist[referrer.paid.pk]
    assert (
        paid["role"],
        paid["rate_percent"],
        paid["amount_usdc"],
        paid["paid_usdc"],
        paid["owed_usdc"],
        paid["status"],
        paid["bot_name"],
    ) == ("referral_1", "5.00", "0.050000", "0.050000", "0.000000", "paid", "Momentum")
    assert paid["signatures"] == both.signature  # not the attempt that paid only the creator
    assert datetime.fromisoformat(paid["created_at_utc"]).utcoffset() == timedelta(0)
    assert by_dist[referrer.own.pk]["signatures"] == legacy.signature
    assert (by_dist[referrer.own.pk]["role"], by_dist[referrer.own.pk]["rate_percent"]) == (
        "creator",
        "",
    )
    assert by_dist[referrer.carried.pk]["carried_usdc"] == "0.020000"
    assert by_dist[referrer.owed.pk]["status"] == "owed"
    assert [r["role"] for r in csv_rows(client.get("/earnings/history.csv?role=creator"))] == [
        "creator"
    ]
    html = client.get("/earnings/?role=referral_1").content.decode()
    assert (
        f'title="{both.signature}"' in html
        and 'href="/earnings/history.csv?role=referral_1"' in html
    )


def test_a_wallet_without_legs_sees_a_note(client, referrer):
    stranger = address()
    sign_in_as(client, stranger)
    response = client.get("/earnings/")
    assert response.status_code == 200
    assert "has not earned from any share yet" in text(response)
    assert referrer.wallet not in response.content.decode()
    assert csv_rows(client.get("/earnings/history.csv")) == []
    # a referrer without bots is pointed here from the creator's page
    sign_in_as(client, referrer.chain.referrers[1])
    assert "on its earnings page" in text(client.get("/creator/"))


@pytest.mark.django_db(transaction=True)
def test_the_creator_dashboard_shows_where_the_shares_went(client, split_payouts):
    sign_in_as(client, split_payouts.creator)
    response = client.get("/creator/")
    split = response.context["split"]
    # shares 10 + 4 USDC; levels 5 / 2 / 1 %, the fee 1.5 %; level 3's legs carried for it
    parts = (split.gross, split.referrals, split.platform, split.net)
    assert [(p.amount, p.paid, p.owed) for p in parts] == [
        (14_000_000, 9_900_000, 3_960_000),
        (1_120_000, 700_000, 280_000),
        (210_000, 150_000, 60_000),
        (12_670_000, 9_050_000, 3_620_000),
    ]
    assert split.gross.amount == split.referrals.amount + split.platform.amount + split.net.amount
    body = text(response)
    assert "Gross share 14.000000 9.900000 3.960000" in body
    assert "To referrals (levels 1–3) 1.120000 0.700000 0.280000" in body
    assert "To the platform (fee) 0.210000 0.150000 0.060000" in body
    assert "Net (your leg) 12.670000 9.050000 3.620000" in body
    # another creator counts none of them
    sign_in_as(client, PublishedBotFactory().creator.address)
    other = client.get("/creator/").context["split"]
    assert (other.gross.amount, other.net.amount) == (0, 0)
