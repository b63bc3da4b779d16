"""``demo_market --once`` against a local node (its own process), a django-q2 cluster (its own
process, ORM broker on the test database) and a live web server, with the demo's platform fee
(1 % to the demo treasury, as ``make run`` sets it): real payouts on chain and in PostgreSQL,
every leg of the split shares in its recipient's token account (creators, referrers, the
treasury), every staged hard case as the ledger records it, the demo sign-ins through SIWS, and
a second run that resumes the same world."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from solders.pubkey import Pubkey

from profitshare.api.auth import signed_headers
from profitshare.demo import splits
from profitshare.models import (
    IOU,
    Alert,
    AttemptStatus,
    AuditEvent,
    CarryReason,
    Distribution,
    DistributionLeg,
    IouReason,
    IouStatus,
    LegCarry,
    PayoutAttempt,
    PublishedBot,
    Referral,
    SiwsNonce,
    Subscription,
)
from tests.deploy.chain import Rpc
from tests.deploy.processes import ADMIN_SECRET, INTAKE_SECRET, ProductProcesses

SEED = 5
TREASURY = splits.treasury(SEED)
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(tmp_path, live_server, settings):
    """The node and a qcluster as processes; this process serves the web (``live_server``)
    with the demo on and the demo's platform fee (``splits.platform_settings``, as
    ``run_product`` gives its processes); returns (node RPC, run(): the demo's output)."""
    fee = splits.platform_settings(SEED)
    procs = ProductProcesses(tmp_path, **fee)
    settings.QV_INTAKE_SECRET, settings.QV_ADMIN_SECRET = INTAKE_SECRET, ADMIN_SECRET
    settings.QV_DEMO, settings.QV_DEMO_SEED, settings.DEBUG = True, SEED, True
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = int(fee["QV_PLATFORM_FEE_BPS"]), fee["QV_PLATFORM_TREASURY"]
    try:
        node_url = procs.start_node(slot_ms=100)
        procs.start_qcluster("qcluster")
        settings.QV_RPC_URLS = [node_url]

        def run() -> str:
            out = io.StringIO()
            call_command(
                "demo_market", "--once", "--seed", str(SEED), "--subscribers", "6", "--round", "6",
                "--rpc-url", node_url, "--api-url", live_server.url, "--timeout", "45", stdout=out,
            )
            return out.getvalue()

        yield Rpc(node_url), run
        assert "database is locked" not in procs.log("qcluster")
    finally:
        procs.stop()


def _sub(label: str) -> Subscription:
    return Subscription.objects.get(subscription_id=f"demo{SEED}-{label}")


def _leg_paid(attempt: PayoutAttempt, wallet: str) -> int:
    """What a landed payout attempt paid ``wallet`` (its recorded legs)."""
    return sum(amount for _, to, amount in attempt.legs if to == wallet)


def _paid_to(wallet: str) -> int:
    """What the ledger says was paid to ``wallet``, over every leg in every role."""
    return sum(DistributionLeg.objects.filter(wallet=wallet).values_list("paid", flat=True))


def test_demo_market_once_pays_on_chain_and_stages_every_case(demo, client):
    rpc, run = demo
    output = run()
    print(output)

    # real payouts: each demo wallet's token account (the creators', the referrers', the
    # treasury's) holds exactly what the ledger says its legs were paid, and every transfer
    # into it is a landed attempt that recorded that leg for that amount
    landed = {a.signature: a for a in PayoutAttempt.objects.filter(status=AttemptStatus.LANDED)}
    assert len(landed) >= 4
    names = {**splits.wallet_names(SEED), TREASURY: "treasury"}
    for wallet, label in names.items():
        deposits = rpc.deposits(wallet) if rpc.usdc_balance(wallet) is not None else {}
        assert (rpc.usdc_balance(wallet) or 0) == _paid_to(wallet) == sum(deposits.values()), label
        for signature, amount in deposits.items():
            assert _leg_paid(landed[signature], wallet) == amount, label
    for d in Distribution.objects.all():
        assert d.paid + d.owed + d.carried + d.voided == d.share + d.carry_in
        assert d.status not in ("pending", "processing")
        assert d.share == sum(leg.amount for leg in d.legs.all())
        if d.share >= 100:  # 1 % of it is at least a base unit
            assert d.legs.filter(role="platform", wallet=TREASURY).exists()

    # the referral chain, recorded through the API: ada <- rhea <- ines <- bao, dara <- kai
    ada, dara = (splits.wallet(SEED, label) for label in ("ada", "dara"))
    rhea, ines, bao, kai = (splits.wallet(SEED, label) for label in ("rhea", "ines", "bao", "kai"))
    assert set(Referral.objects.values_list("wallet", "referrer_wallet")) == {(ada, rhea), (rhea, ines), (ines, bao), (dara, kai)}
    chain_path = f"/api/v1/referrals/{ada}"
    assert client.get(chain_path, headers=signed_headers(INTAKE_SECRET, "GET", chain_path)).json()["chain"] == [rhea, ines, bao]

    # a split share: 10 USDC to the treasury (1 %), levels 1-3 (5, 2, 1 %) and ada (the rest),
    # all paid by one landed transaction, each leg in its recipient's token account
    split = Distribution.objects.get(subscription=_sub("split"))
    legs = {leg.role: leg for leg in split.legs.all()}
    assert {r: (legs[r].wallet, legs[r].amount) for r in legs} == {
        "creator": (ada, 9_100_000), "platform": (TREASURY, 100_000),
        "referral_1": (rhea, 500_000), "referral_2": (ines, 200_000), "referral_3": (bao, 100_000),
    }
    assert split.status == "paid" and all(leg.paid == leg.amount for leg in legs.values())
    attempt = PayoutAttempt.objects.get(distribution=split, status=AttemptStatus.LANDED)
    for leg in legs.values():
        assert rpc.received(attempt.signature, leg.wallet) == leg.amount
    assert rpc.usdc_balance(TREASURY) == _paid_to(TREASURY) > 0
    assert "[split] share 10.000000 USDC paid" in output and "referral_1 rhea 0.500000 (paid 0.500000)" in output

    # kai, dara's referrer, has no USDC token account: its legs are carried for it, never paid
    assert rpc.usdc_balance(kai) is None
    kai_legs = DistributionLeg.objects.filter(wallet=kai, role="referral_1")
    assert kai_legs.exists() and all(leg.paid == 0 and leg.carried > 0 for leg in kai_legs)
    assert LegCarry.objects.filter(wallet=kai, reason=CarryReason.NO_TOKEN_ACCOUNT, amount__gt=0).exists()
    assert "carried" in output and "no USDC token account" in output

    # a creator whose token account did not exist: its first payout created it
    first = PayoutAttempt.objects.filter(distribution__subscription=_sub("newata"), status=AttemptStatus.LANDED).get()
    meta = rpc.transaction(first.signature)["meta"]
    assert not [b for b in meta["preTokenBalances"] if b["owner"] == dara]
    assert [b for b in meta["postTokenBalances"] if b["owner"] == dara]

    # dust carried, not paid: each recipient's part for that recipient (the creator's on the
    # subscription, the platform's 1 % in a carry of its own)
    dust = Distribution.objects.get(subscription=_sub("dust"))
    assert (dust.status, dust.share, dust.carried, dust.paid) == ("carried", 5_000, 5_000, 0)
    assert _sub("dust").dust_carry == 4_950
    assert LegCarry.objects.get(subscription=_sub("dust"), wallet=TREASURY).amount == 50

    # too little SOL: an IOU per leg (ada's five), topped up, all paid by the guard's retry in
    # one transaction; on chain
    lows = list(IOU.objects.filter(subscription=_sub("lowsol")).select_related("leg"))
    assert sorted(iou.leg.role for iou in lows) == ["creator", "platform", "referral_1", "referral_2", "referral_3"]
    (low_attempt,) = PayoutAttempt.objects.filter(distribution=lows[0].distribution, status=AttemptStatus.LANDED)
    for low in lows:
        assert (low.reason, low.status, low.paid_amount) == (IouReason.INSUFFICIENT_SOL, IouStatus.PAID, low.amount)
        assert AuditEvent.objects.filter(entity="iou", entity_id=str(low.pk), actor="api:guard").exists()
        assert rpc.received(low_attempt.signature, low.leg.wallet) == low.amount

    # a withdraw that delivered half: half paid, each leg's rest a withdraw_short IOU
    short = Distribution.objects.get(subscription=_sub("short"))
    assert short.paid == short.share // 2 and short.owed == short.share - short.paid > 0
    short_ious = IOU.objects.filter(distribution=short)
    assert short_ious.count() == short.legs.count() == 2
    assert {iou.reason for iou in short_ious} == {IouReason.WITHDRAW_SHORT}

    # IOUs past their TTL: expired (audit + alert), still owed, no longer blocking
    expired = list(IOU.objects.filter(subscription=_sub("expired")))
    assert len(expired) == 5
    for iou in expired:
        assert iou.status == IouStatus.EXPIRED and iou.remaining > 0
        assert AuditEvent.objects.filter(entity="iou", entity_id=str(iou.pk), to_status="expired").exists()
    assert Alert.objects.filter(kind="iou_expired").exists()
    guard_path = f"/api/v1/subscriptions/demo{SEED}-expired/guard"
    guard = client.get(guard_path, headers=signed_headers(INTAKE_SECRET, "GET", guard_path))
    assert guard.json()["can_withdraw"] is True and guard.json()["owed"] == sum(iou.remaining for iou in expired)

    # funds moved out on-chain while owing: delinquent, with the audit event and an alert
    delinquent = _sub("delinquent")
    assert delinquent.status == "delinquent"
    assert {iou.status for iou in IOU.objects.filter(subscription=delinquent)} == {IouStatus.OPEN}
    assert AuditEvent.objects.filter(entity="subscription", entity_id=delinquent.subscription_id, to_status="delinquent").exists()
    assert Alert.objects.filter(kind="delinquency").exists()
    assert rpc.usdc_balance(delinquent.subscriber_wallet) == 100_000_000

    # an invalid creator address: refused (422), nothing written
    assert "HTTP 422" in output and "creator_wallet" in output
    assert not PublishedBot.objects.filter(bot_id__contains="invalid").exists()

    # the demo page lists the wallets and the cases; signing in as a demo creator goes through
    # SIWS (a nonce issued and consumed) and lands on a dashboard showing its payouts
    page = client.get("/demo/").content.decode()
    assert dara in page and "Funds moved out on-chain while owing" in page and "withdraw_short" in page
    response = client.post("/demo/", {"address": dara})
    assert response.status_code == 302 and response["Location"] == "/creator/"
    nonce = SiwsNonce.objects.get(address=dara)
    assert nonce.used_at is not None
    dashboard = client.get("/creator/").content.decode()
    assert first.signature in dashboard

    # the page lists the referrers and the splits; a referrer signs in to its /earnings/, which
    # shows its paid referral legs; kai's says its legs wait for a USDC token account
    assert rhea in page and "rhea referred ada" in page and "kai referred dara (no USDC token account" in page
    response = client.post("/demo/", {"address": rhea})
    assert response.status_code == 302 and response["Location"] == "/earnings/"
    earnings = client.get("/earnings/").content.decode()
    assert 'data-role="referral_1"' in earnings and "Referral, level 1" in earnings
    assert client.post("/demo/", {"address": kai})["Location"] == "/earnings/"
    assert 'id="no-token-account"' in client.get("/earnings/").content.decode()
    client.post("/demo/", {"admin": "1"})
    treasury_page = client.get("/console/treasury/").content.decode()
    assert TREASURY in treasury_page

    # a second run resumes the same world instead of failing
    again = run()
    assert "new: 0 bots, 0 subscriptions, 0 agent wallets funded" in again
    assert "new: 0 links, 0 USDC accounts opened" in again
    assert Subscription.objects.filter(subscription_id__startswith=f"demo{SEED}-").count() == 13
    assert Referral.objects.count() == 4
    for wallet in (dara, rhea, TREASURY):
        assert rpc.usdc_balance(wallet) == _paid_to(wallet)
    assert Pubkey.from_string(dara)
