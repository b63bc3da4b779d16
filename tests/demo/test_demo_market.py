"""``demo_market --once`` against a local node (its own process), a django-q2 cluster (its own
process, ORM broker on the test database) and a live web server: real payouts on chain and in
PostgreSQL, every staged hard case as the ledger records it, the demo sign-in through SIWS, and
a second run that resumes the same world."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from solders.pubkey import Pubkey

from profitshare.api.auth import signed_headers
from profitshare.demo.wallets import CREATOR, keypair
from profitshare.models import (
    IOU,
    Alert,
    AttemptStatus,
    AuditEvent,
    Distribution,
    IouReason,
    IouStatus,
    PayoutAttempt,
    PublishedBot,
    SiwsNonce,
    Subscription,
)
from tests.deploy.chain import Rpc
from tests.deploy.processes import ADMIN_SECRET, INTAKE_SECRET, ProductProcesses

SEED = 5
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(tmp_path, live_server, settings):
    """The node and a qcluster as processes; this process serves the web (``live_server``)
    with the demo on; returns (node RPC, web URL, run(): the demo's output)."""
    procs = ProductProcesses(tmp_path)
    settings.QV_INTAKE_SECRET, settings.QV_ADMIN_SECRET = INTAKE_SECRET, ADMIN_SECRET
    settings.QV_DEMO, settings.QV_DEMO_SEED, settings.DEBUG = True, SEED, True
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


def test_demo_market_once_pays_on_chain_and_stages_every_case(demo, client):
    rpc, run = demo
    output = run()
    print(output)

    # real payouts: each demo creator's token account holds exactly what the ledger says was
    # paid to it, and every transfer into it is one landed attempt of the recorded amount
    landed = {a.signature: a for a in PayoutAttempt.objects.filter(status=AttemptStatus.LANDED).select_related("distribution")}
    assert len(landed) >= 4
    for label in ("ada", "bao", "chen", "dara"):
        creator = str(keypair(SEED, CREATOR, label).pubkey())
        paid = sum(d.paid for d in Distribution.objects.filter(creator__address=creator))
        deposits = rpc.deposits(creator) if rpc.usdc_balance(creator) is not None else {}
        assert (rpc.usdc_balance(creator) or 0) == paid == sum(deposits.values()), label
        for signature, amount in deposits.items():
            assert landed[signature].amount == amount
            assert landed[signature].distribution.creator.address == creator
    for d in Distribution.objects.all():
        assert d.paid + d.owed + d.carried + d.voided == d.share + d.carry_in
        assert d.status not in ("pending", "processing")

    # a creator whose token account did not exist: its first payout created it
    dara = str(keypair(SEED, CREATOR, "dara").pubkey())
    first = PayoutAttempt.objects.filter(distribution__subscription=_sub("newata"), status=AttemptStatus.LANDED).get()
    meta = rpc.transaction(first.signature)["meta"]
    assert not [b for b in meta["preTokenBalances"] if b["owner"] == dara]
    assert [b for b in meta["postTokenBalances"] if b["owner"] == dara]

    # dust carried, not paid
    dust = Distribution.objects.get(subscription=_sub("dust"))
    assert (dust.status, dust.share, dust.carried, dust.paid) == ("carried", 5_000, 5_000, 0)
    assert _sub("dust").dust_carry == 5_000

    # too little SOL: an IOU, topped up, paid by the guard's retry; on chain
    low = IOU.objects.get(subscription=_sub("lowsol"))
    assert (low.reason, low.status, low.paid_amount) == (IouReason.INSUFFICIENT_SOL, IouStatus.PAID, low.amount)
    assert AuditEvent.objects.filter(entity="iou", entity_id=str(low.pk), actor="api:guard").exists()
    low_attempt = PayoutAttempt.objects.get(distribution=low.distribution, status=AttemptStatus.LANDED)
    assert rpc.received(low_attempt.signature, low.creator.address) == low.amount

    # a withdraw that delivered half: half paid, the rest a withdraw_short IOU
    short = Distribution.objects.get(subscription=_sub("short"))
    assert short.paid == short.share // 2 and short.owed == short.share - short.paid > 0
    assert IOU.objects.get(distribution=short).reason == IouReason.WITHDRAW_SHORT

    # an IOU past its TTL: expired (audit + alert), still owed, no longer blocking
    expired = IOU.objects.get(subscription=_sub("expired"))
    assert expired.status == IouStatus.EXPIRED and expired.remaining > 0
    assert AuditEvent.objects.filter(entity="iou", entity_id=str(expired.pk), to_status="expired").exists()
    assert Alert.objects.filter(kind="iou_expired").exists()
    guard_path = f"/api/v1/subscriptions/demo{SEED}-expired/guard"
    guard = client.get(guard_path, headers=signed_headers(INTAKE_SECRET, "GET", guard_path))
    assert guard.json()["can_withdraw"] is True and guard.json()["owed"] == expired.remaining

    # funds moved out on-chain while owing: delinquent, with the audit event and an alert
    delinquent = _sub("delinquent")
    assert delinquent.status == "delinquent"
    assert IOU.objects.get(subscription=delinquent).status == IouStatus.OPEN
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

    # a second run resumes the same world instead of failing
    again = run()
    assert "new: 0 bots, 0 subscriptions, 0 agent wallets funded" in again
    assert Subscription.objects.filter(subscription_id__startswith=f"demo{SEED}-").count() == 12
    assert rpc.usdc_balance(dara) == sum(d.paid for d in Distribution.objects.filter(creator__address=dara))
    assert Pubkey.from_string(dara)
