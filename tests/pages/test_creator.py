"""The creator dashboard on real payouts from the local node: totals, breakdowns, history with
filters and keyset pagination (htmx fragment and plain page), CSV export, and access control."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from solders.keypair import Keypair

from profitshare.models import AttemptStatus, Distribution, PayoutAttempt
from tests.factories import PublishedBotFactory
from tests.pages.conftest import sign_in_as
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/creator/?status=paid")
    assert response.status_code == 302
    assert response["Location"].startswith("/signin/?next=")


def test_totals_and_breakdowns_from_real_payouts(client, earnings):
    sign_in_as(client, earnings.creator_address)
    response = client.get("/creator/")
    assert response.status_code == 200
    totals = response.context["totals"]
    assert (totals.lifetime_paid, totals.paid_30d, totals.owed_in_ious, totals.paid_closes) == (
        7_750_000, 7_750_000, 3_000_000, 3,
    )
    body = text(response)
    assert "Lifetime paid 7.750000" in body
    assert "Owed to you (IOUs) 3.000000" in body
    by_bot = response.context["by_bot"]
    assert [(b["name"], b["paid"], b["owed"], b["paid_closes"]) for b in by_bot] == [
        ("Momentum", 7_750_000, 3_000_000, 3)
    ]
    subscribers = {r["subscriber_wallet"]: (r["paid"], r["owed"]) for r in response.context["by_subscriber"]["rows"]}
    assert subscribers == {
        earnings.paid_world.subscription.subscriber_wallet: (7_750_000, 0),
        earnings.iou_world.subscription.subscriber_wallet: (0, 3_000_000),
    }
    assert (response.context["daily"][-1]["paid"], response.context["daily"][-1]["paid_closes"]) == (7_750_000, 3)
    assert response.context["chart"]["paid"][-1] == "7.750000"


def test_history_rows_link_each_landed_signature_to_the_explorer(client, earnings, settings):
    settings.QV_EXPLORER_TX_URL = "https://explorer.example/tx/{signature}?cluster=custom"
    sign_in_as(client, earnings.creator_address)
    html = client.get("/creator/").content.decode()
    landed = PayoutAttempt.objects.filter(status=AttemptStatus.LANDED, distribution__creator__address=earnings.creator_address)
    assert landed.count() == 3
    for attempt in landed:
        assert f'href="https://explorer.example/tx/{attempt.signature}?cluster=custom"' in html
    assert "10.00 %" in html and "owed" in html


def test_filters_by_status_bot_and_date(client, earnings):
    sign_in_as(client, earnings.creator_address)
    owed = client.get("/creator/?status=owed").context["history"]["rows"]
    assert [r["pk"] for r in owed] == [earnings.iou.distribution_id]
    paid = client.get("/creator/?status=paid").context["history"]["rows"]
    assert sorted(r["pk"] for r in paid) == sorted(d.pk for d in earnings.paid)
    bot_id = earnings.paid_world.subscription.bot.bot_id
    assert len(client.get(f"/creator/?bot={bot_id}").context["history"]["rows"]) == 4
    today = timezone.now().date()
    assert len(client.get(f"/creator/?date_from={today}&date_to={today}").context["history"]["rows"]) == 4
    tomorrow = today + timedelta(days=1)
    assert client.get(f"/creator/?date_from={tomorrow}").context["history"]["rows"] == []
    yesterday = today - timedelta(days=1)
    assert client.get(f"/creator/?date_to={yesterday}").context["history"]["rows"] == []


def test_another_creators_bot_is_a_404_and_never_a_filter(client, earnings):
    stranger_bot = PublishedBotFactory(name="Someone else's")
    sign_in_as(client, earnings.creator_address)
    assert client.get(f"/creator/bots/{stranger_bot.bot_id}/").status_code == 404
    own = earnings.paid_world.subscription.bot.bot_id
    assert client.get(f"/creator/bots/{own}/").status_code == 200
    response = client.get(f"/creator/?bot={stranger_bot.bot_id}")
    assert response.status_code == 200
    assert response.context["history"]["rows"] == [] and not response.context["history"]["valid"]
    assert "Select a valid choice" in response.content.decode()
    # and the stranger signed in sees nothing of ours
    sign_in_as(client, stranger_bot.creator.address)
    assert client.get(f"/creator/bots/{own}/").status_code == 404
    stranger_view = client.get("/creator/")
    assert stranger_view.context["totals"].paid_closes == 0
    assert earnings.paid_world.subscription.subscriber_wallet not in stranger_view.content.decode()


def test_a_wallet_without_bots_sees_a_note(client):
    sign_in_as(client, str(Keypair().pubkey()))
    response = client.get("/creator/")
    assert response.status_code == 200 and "has not published a bot" in response.content.decode()
    assert client.get("/creator/history.csv").status_code == 404


def test_keyset_pages_plain_and_htmx(client, localnet):
    creator = Keypair()
    world = make_world(localnet, collateral=0, lamports=0, bot__creator__address=str(creator.pubkey()))
    for n in range(60):  # recorded by the intake service; not paid (pending)
        world.close(1_000_000 + n, realize=False)
    sign_in_as(client, str(creator.pubkey()))
    first = client.get("/creator/")
    page1 = first.context["history"]
    assert len(page1["rows"]) == 25 and page1["newer"] is None and page1["older"]
    second = client.get(f"/creator/?after={page1['older']}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="history-rows")
    assert second.templates[0].name == "profitshare/creator/_history_rows.html"
    assert b"<html" not in second.content and b'id="history-rows"' in second.content
    assert b"<form" not in second.content  # the filter form stays on the page
    page2 = second.context["history"]
    page3 = client.get(f"/creator/?after={page2['older']}").context["history"]
    assert len(page2["rows"]) == 25 and len(page3["rows"]) == 10 and page3["older"] is None
    seen = [r["pk"] for r in page1["rows"] + page2["rows"] + page3["rows"]]
    assert seen == list(
        Distribution.objects.filter(creator__address=str(creator.pubkey())).order_by("-created_at", "-pk").values_list("pk", flat=True)
    )
    back = client.get(f"/creator/?before={page3['newer']}").context["history"]
    assert [r["pk"] for r in back["rows"]] == [r["pk"] for r in page2["rows"]]
    assert client.get("/creator/?after=garbage").status_code == 200  # a bad cursor is the first page


def test_csv_export_streams_iso_dates_usdc_and_signatures(client, earnings):
    sign_in_as(client, earnings.creator_address)
    response = client.get("/creator/history.csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 4
    by_pnl = {r["realized_pnl_usdc"]: r for r in rows}
    first = by_pnl["40.000000"]
    assert (first["share_usdc"], first["paid_usdc"], first["owed_usdc"], first["status"]) == (
        "4.000000", "4.000000", "0.000000", "paid",
    )
    assert first["profit_share_percent"] == "10.00"
    assert datetime.fromisoformat(first["created_at_utc"]).utcoffset() == timedelta(0)
    landed = PayoutAttempt.objects.get(distribution__realized_pnl=40_000_000, distribution__creator__address=earnings.creator_address)
    assert first["signatures"] == landed.signature
    assert by_pnl["30.000000"]["owed_usdc"] == "3.000000" and by_pnl["30.000000"]["signatures"] == ""
    filtered = client.get("/creator/history.csv?status=owed")
    assert len(list(csv.DictReader(io.StringIO(b"".join(filtered.streaming_content).decode())))) == 1


def test_csv_of_a_large_history_comes_in_chunks(client, localnet, monkeypatch):
    from profitshare.selectors import dashboard

    monkeypatch.setattr(dashboard, "CSV_CHUNK", 7)
    creator = Keypair()
    world = make_world(localnet, collateral=0, lamports=0, bot__creator__address=str(creator.pubkey()))
    for n in range(30):
        world.close(2_000_000 + n, realize=False)
    sign_in_as(client, str(creator.pubkey()))
    body = b"".join(client.get("/creator/history.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 30 and len({r["close_id"] for r in rows}) == 30


def test_breakdowns_agree_with_the_ledger_for_many_subscribers():
    """More subscribers than the breakdown shows: the top 20 by paid (then owed) and every
    total come out as computed from the distributions and IOUs themselves."""
    from django.db.models import F, Sum

    from profitshare.models import IOU
    from profitshare.selectors import dashboard
    from profitshare.services import earnings
    from tests.factories import SubscriptionFactory

    bot = PublishedBotFactory(name="Crowded")
    other_bot = PublishedBotFactory(name="Second", creator=bot.creator)
    subs = [SubscriptionFactory(bot=bot if n % 3 else other_bot) for n in range(30)]
    later = timezone.now() + timedelta(days=7)
    for n, sub in enumerate(subs):
        paid = 0 if n in (4, 17) else 1_000_000 * ((n * 7) % 11 + 1)  # ties on paid too
        owed = 2_500_000 if n in (4, 9, 17) else 0
        dist = Distribution.objects.create(
            subscription=sub, creator=bot.creator, bot=sub.bot, realized_pnl=10 * (paid + owed),
            profit_share_bps=1000, policy="per_trade", share=paid + owed, owed=owed, paid=paid,
            status="partially_paid" if paid and owed else ("paid" if paid else "owed"),
        )
        if owed:
            IOU.objects.create(distribution=dist, subscription=sub, creator=bot.creator, amount=owed,
                               reason="insufficient_sol", next_retry_at=later, expires_at=later)
    earnings.rebuild()

    owed_by = dict(IOU.objects.values_list("subscription_id").annotate(o=Sum(F("amount") - F("paid_amount"))))
    paid_by = dict(Distribution.objects.values_list("subscription_id").annotate(p=Sum("paid")))
    expected = sorted(
        (s for s in subs if paid_by[s.pk] or owed_by.get(s.pk)),
        key=lambda s: (-paid_by[s.pk], -owed_by.get(s.pk, 0), s.pk),
    )
    sums = dashboard.creator_sums(bot.creator_id)
    breakdown = dashboard.earnings_by_subscriber(bot.creator_id, sums=sums)
    assert [r["subscription_id"] for r in breakdown["rows"]] == [s.subscription_id for s in expected[:20]]
    assert breakdown["total"] == 30
    totals = dashboard.creator_totals(bot.creator_id, sums=sums)
    assert totals.lifetime_paid == sum(paid_by.values()) and totals.owed_in_ious == 3 * 2_500_000
    assert totals.paid_closes == 28
    per_bot = {b["name"]: (b["paid"], b["owed"]) for b in dashboard.earnings_by_bot(bot.creator_id, sums=sums)}
    for b in (bot, other_bot):
        mine = [s.pk for s in subs if s.bot_id == b.pk]
        assert per_bot[b.name] == (sum(paid_by[pk] for pk in mine), sum(owed_by.get(pk, 0) for pk in mine))
    one_bot = dashboard.earnings_by_subscriber(
        bot.creator_id, bot_pk=other_bot.pk, sums=dashboard.creator_sums(bot.creator_id, bot_pk=other_bot.pk)
    )
    assert [r["subscription_id"] for r in one_bot["rows"]] == [
        s.subscription_id for s in expected if s.bot_id == other_bot.pk
    ][:20]
    assert one_bot["total"] == 10
