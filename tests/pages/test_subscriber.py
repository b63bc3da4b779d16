"""The subscriber's trade history on real payouts: the creator's share deducted, signatures,
what is owed and why; the guard banner with "retry now"; someone else's subscription is a 404."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair

from profitshare.models import IouStatus, PayoutAttempt
from tests.pages.conftest import sign_in_as

pytestmark = pytest.mark.django_db(transaction=True)


def test_trade_history_shows_the_share_deducted(client, earnings):
    sub = earnings.paid_world.subscription
    sign_in_as(client, sub.subscriber_wallet)
    listing = client.get("/subscriber/")
    assert sub.subscription_id in listing.content.decode()
    response = client.get(f"/subscriber/{sub.subscription_id}/")
    assert response.status_code == 200
    rows = {r["realized_pnl"]: r for r in response.context["page"]["rows"]}
    assert set(rows) == {40_000_000, 25_000_000, 12_500_000}
    assert (rows[40_000_000]["share"], rows[40_000_000]["paid"], rows[40_000_000]["net_pnl"]) == (
        4_000_000, 4_000_000, 36_000_000,
    )
    summary = response.context["summary"]
    assert (summary["realized_pnl"], summary["share"], summary["net_pnl"]) == (77_500_000, 7_750_000, 69_750_000)
    html = response.content.decode()
    assert "36.000000" in html and "69.750000" in html
    for attempt in PayoutAttempt.objects.filter(distribution__subscription=sub):
        assert attempt.signature in html
    assert "Nothing blocks withdrawal" in html


def test_a_loss_owes_nothing_and_keeps_its_full_pnl(client, earnings, gateway):
    world = earnings.paid_world
    world.close(-5_000_000)
    sign_in_as(client, world.subscription.subscriber_wallet)
    rows = client.get(f"/subscriber/{world.subscription.subscription_id}/").context["page"]["rows"]
    loss = next(r for r in rows if r["realized_pnl"] == -5_000_000)
    assert (loss["share"], loss["net_pnl"], loss["distribution_pk"]) == (0, -5_000_000, None)


def test_debts_block_with_a_banner_and_retry_now_pays_them(client, earnings, q_sync, localnet):
    world = earnings.iou_world
    sub = world.subscription
    sign_in_as(client, sub.subscriber_wallet)
    response = client.get(f"/subscriber/{sub.subscription_id}/")
    html = response.content.decode()
    assert "Withdrawal is blocked" in html and 'data-owed="3000000"' in html
    row = response.context["page"]["rows"][0]
    assert (row["owed"], row["owed_reason"]) == (3_000_000, "insufficient_sol")
    assert "Agent wallet lacks SOL" in html
    # how much SOL the agent wallet needs, and where to send it
    assert f'data-sol-needed="{earnings.iou.sol_needed}"' in html and sub.agent_wallet.pubkey in html
    assert "it needs 0.002044280 SOL" in html  # one signature's fee + the agent's token account's rent
    localnet.rpc("requestAirdrop", sub.agent_wallet.pubkey, 100_000_000)  # the subscriber tops up SOL
    banner = client.post(f"/subscriber/{sub.subscription_id}/retry/", HTTP_HX_REQUEST="true")
    assert banner.status_code == 200 and b"Nothing blocks withdrawal" in banner.content
    earnings.iou.refresh_from_db()
    assert earnings.iou.status == IouStatus.PAID
    assert world.creator_usdc() == 7_750_000 + 3_000_000
    after = client.get(f"/subscriber/{sub.subscription_id}/").context["page"]["rows"][0]
    assert after["owed"] == 0 and after["signatures"] and after["owed_reason"] is None


def test_retry_now_without_javascript_redirects_back(client, earnings):
    sub = earnings.iou_world.subscription
    sign_in_as(client, sub.subscriber_wallet)
    response = client.post(f"/subscriber/{sub.subscription_id}/retry/")
    assert response.status_code == 302 and response["Location"] == f"/subscriber/{sub.subscription_id}/"
    earnings.iou.refresh_from_db()
    assert earnings.iou.status == IouStatus.PROCESSING  # claimed and queued for the cluster
    banner = client.get(f"/subscriber/{sub.subscription_id}/banner/").content.decode()
    assert 'hx-trigger="every 2s"' in banner and "Retrying" in banner


def test_someone_elses_subscription_is_a_404(client, earnings):
    mine = earnings.paid_world.subscription
    theirs = earnings.iou_world.subscription
    sign_in_as(client, mine.subscriber_wallet)
    for url in (f"/subscriber/{theirs.subscription_id}/", f"/subscriber/{theirs.subscription_id}/banner/"):
        assert client.get(url).status_code == 404
    assert client.post(f"/subscriber/{theirs.subscription_id}/retry/").status_code == 404
    earnings.iou.refresh_from_db()
    assert earnings.iou.status == IouStatus.OPEN  # nothing happened to their debt
    assert client.get("/subscriber/no-such-sub/").status_code == 404
    sign_in_as(client, str(Keypair().pubkey()))
    assert "no subscriptions" in client.get("/subscriber/").content.decode()
    assert client.get(f"/subscriber/{mine.subscription_id}/").status_code == 404


def test_the_banner_reads_what_the_guard_answers(client, earnings):
    """The banner the subscriber sees and ``guard`` (the service a withdrawal asks) give the
    same answer — one read, ``selectors.debts.debt_state`` — while an IOU blocks, once it is
    past its TTL (owed, no longer blocking), and while a retry runs."""
    from datetime import timedelta

    from django.utils import timezone

    from profitshare.models import IOU, Subscription
    from profitshare.selectors.debts import debt_state
    from profitshare.services.guards import guard

    sub_pk = earnings.iou_world.subscription.pk

    def both():
        sub = Subscription.objects.get(pk=sub_pk)
        return debt_state(sub)["guard"], guard(sub.subscription_id)

    sign_in_as(client, earnings.iou_world.subscription.subscriber_wallet)
    url = f"/subscriber/{earnings.iou_world.subscription.subscription_id}/"
    banner, answer = both()
    assert banner == answer and (answer.can_withdraw, answer.blocking_owed) == (False, 3_000_000)
    assert 'Withdrawal is blocked:</strong> <span data-owed="3000000">' in client.get(url).content.decode()
    IOU.objects.filter(pk=earnings.iou.pk).update(status=IouStatus.EXPIRED, expires_at=timezone.now() - timedelta(days=1))
    banner, answer = both()
    assert banner == answer and (answer.can_withdraw, answer.owed, answer.blocking_owed) == (True, 3_000_000, 0)
    assert "Nothing blocks withdrawal." in client.get(url).content.decode()
    IOU.objects.filter(pk=earnings.iou.pk).update(status=IouStatus.PROCESSING, expires_at=timezone.now() + timedelta(days=1))
    Subscription.objects.filter(pk=sub_pk).update(status="delinquent")
    banner, answer = both()
    assert banner == answer and answer.delinquent and not answer.can_withdraw
    assert debt_state(Subscription.objects.get(pk=sub_pk))["retrying"] is True
