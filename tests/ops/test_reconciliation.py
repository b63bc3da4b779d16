"""Reconciliation (docs/design.md, "Reconciliation"): landed payouts read back from the local
node, agent wallets scanned for payouts the ledger does not know; mismatches alert with both sides; a report is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.instructions import get_associated_token_address

from profitshare.models import (
    Alert,
    AuditEvent,
    Distribution,
    DistributionLeg,
    LegRole,
    PayoutAttempt,
)
from profitshare.models.reconciliation import (
    ReconciledAttempt,
    ReconciliationBookmark,
    ReconciliationReport,
)
from profitshare.services.engine import process_distribution
from profitshare.services.reconciliation import latest_report, reconcile
from profitshare.services.referrals import link_referral
from profitshare.tasks import reconcile_task
from tests.chain.gateway_support import confirm, make_gateway, send
from tests.world import USDC, World, fund_payout, make_world, pay_legs

pytestmark = pytest.mark.django_db(transaction=True)


def paid_world(localnet, gateway, *pnls):
    world = make_world(localnet)
    for pnl in pnls:
        process_distribution(world.close(pnl).distribution.pk, gateway=gateway)
    return world


def test_paid_distributions_match_the_chain(localnet, gateway):
    world = paid_world(localnet, gateway, 50_000_000, 30_000_000)
    assert world.creator_usdc() == 8_000_000
    report = reconcile(gateway=gateway)
    assert (report.checked, report.matched, report.mismatched, report.unrecorded) == (2, 2, 0, 0)
    assert report.signatures_scanned >= 2 and report.error == "" and report.finished_at
    assert latest_report() == ReconciliationReport.objects.get() == report
    assert not Alert.objects.filter(kind="reconciliation_mismatch").exists()
    event = AuditEvent.objects.get(entity="reconciliation", entity_id=str(report.pk))
    assert (event.to_status, event.data["matched"]) == ("finished", 2)


def test_a_wrong_destination_is_a_mismatch_with_both_sides(localnet, gateway):
    world = paid_world(localnet, gateway, 50_000_000)
    attempt = PayoutAttempt.objects.get()
    impostor = str(Keypair().pubkey())
    PayoutAttempt.objects.filter(pk=attempt.pk).update(destination_owner=impostor)  # the ledger is wrong
    report = reconcile(gateway=gateway)
    assert (report.checked, report.matched, report.mismatched) == (1, 0, 1)
    alert = Alert.objects.get(kind="reconciliation_mismatch")
    mismatch = alert.data["mismatch"]
    assert mismatch["fields"] == ["destination_owner"]
    assert mismatch["ours"]["destination_owner"] == impostor
    assert mismatch["chain"]["destination_owner"] == str(world.creator)
    assert alert.severity == "critical" and alert.amount == 5_000_000


def test_a_wrong_amount_breaks_both_the_attempt_and_the_ledger_sum(localnet, gateway):
    paid_world(localnet, gateway, 50_000_000)
    PayoutAttempt.objects.update(amount=4_000_000, withdraw_amount=0)
    report = reconcile(gateway=gateway)
    kinds = sorted((m["kind"], tuple(m["fields"])) for m in report.mismatches)
    assert kinds == [("attempt", ("amount",)), ("ledger_sum", ("paid",))]
    assert report.mismatches[0]["chain"]["amount"] == 5_000_000
    assert Alert.objects.filter(kind="reconciliation_mismatch").count() == 2


def test_a_signature_missing_on_chain_and_a_payout_missing_from_the_ledger(localnet, gateway):
    world = paid_world(localnet, gateway, 50_000_000)
    attempt = PayoutAttempt.objects.get()
    real_signature = attempt.signature
    PayoutAttempt.objects.filter(pk=attempt.pk).update(signature=str(Signature(bytes(range(64)))))
    report = reconcile(gateway=gateway)
    by_kind = {m["kind"]: m for m in report.mismatches}
    assert by_kind["attempt"]["fields"] == ["missing"] and by_kind["attempt"]["chain"] is None
    unrecorded = by_kind["unrecorded_payout"]
    assert unrecorded["signature"] == real_signature and unrecorded["ours"] is None
    assert unrecorded["chain"]["amount"] == 5_000_000
    assert unrecorded["chain"]["agent_wallet"] == str(world.agent.pubkey())
    assert (report.checked, report.matched, report.unrecorded) == (1, 0, 1)


def test_a_payout_sent_outside_the_ledger_is_found(localnet, gateway):
    world = paid_world(localnet, gateway, 50_000_000)
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), 1_000_000)
    rogue = gateway.build_payout(world.agent, str(Keypair().pubkey()), 1_000_000, reference="qv:d999:a1")
    send(gateway, rogue)
    confirm(gateway, rogue)
    report = reconcile(gateway=gateway)
    assert (report.matched, report.unrecorded) == (1, 1)
    alert = Alert.objects.get(kind="reconciliation_mismatch")
    assert alert.data["mismatch"]["signature"] == rogue.signature
    assert alert.data["mismatch"]["chain"]["reference"] == "qv:d999:a1"


def test_payouts_older_than_the_window_are_not_read_again(localnet, gateway, settings):
    paid_world(localnet, gateway, 50_000_000)
    report = reconcile(gateway=gateway, now=timezone.now() + timedelta(hours=settings.QV_RECONCILE_WINDOW_HOURS + 1))
    assert (report.checked, report.signatures_scanned) == (0, 0)


def test_an_unreachable_rpc_is_a_failed_report_and_an_alert(localnet, gateway):
    paid_world(localnet, gateway, 50_000_000)
    dead = make_gateway(type("Dead", (), {"url": "http://127.0.0.1:9"})(), max_attempts=1)
    report = reconcile(gateway=dead)
    assert report.error and report.checked == 0 and report.finished_at
    assert Alert.objects.get(kind="rpc_failure").data["report"] == report.pk
    assert AuditEvent.objects.get(entity="reconciliation").to_status == "failed"


def test_the_scheduled_task_uses_the_configured_node(localnet, gateway):
    paid_world(localnet, gateway, 50_000_000)
    assert reconcile_task() == {"checked": 1, "matched": 1, "mismatched": 0, "unrecorded": 0, "error": ""}


# --- bookmarks: each run reads only what is new ----------------------------------------------------
class CountingProxy:
    """A real HTTP JSON-RPC proxy in front of the node that records each method called (batches
    included), to count what a run asked the chain."""

    def __init__(self, target: str) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        calls = self.calls = []
        upstream = httpx.Client(timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                parsed = json.loads(body)
                for request in parsed if isinstance(parsed, list) else [parsed]:
                    calls.append((request["method"], request.get("params")))
                answer = upstream.post(target, content=body, headers={"Content-Type": "application/json"})
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(localnet):
    p = CountingProxy(localnet.url)
    yield p
    p.close()


def test_a_second_run_reads_nothing_old_and_still_finds_a_new_unknown_payout(localnet, gateway, proxy):
    world = paid_world(localnet, gateway, 50_000_000, 30_000_000)
    counted = make_gateway(type("Proxy", (), {"url": proxy.url})())
    first = reconcile(gateway=counted)
    assert (first.checked, first.matched, first.unrecorded) == (2, 2, 0) and first.signatures_scanned >= 4
    assert proxy.methods().count("getSignaturesForAddress") == 1
    bookmark = ReconciliationBookmark.objects.get(agent_wallet=world.subscription.agent_wallet)
    newest = localnet.rpc("getSignaturesForAddress", str(world.agent.pubkey()), {"limit": 1})[0]["signature"]
    assert bookmark.last_signature == newest
    assert ReconciledAttempt.objects.filter(report=first, matched=True).count() == 2

    proxy.calls.clear()
    second = reconcile(gateway=counted)
    assert (second.checked, second.signatures_scanned, second.unrecorded, second.mismatched) == (0, 0, 0, 0)
    assert proxy.methods() == ["getSignaturesForAddress"]  # nothing read back, nothing old listed
    assert proxy.calls[0][1][1]["until"] == newest

    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), 1_000_000)
    rogue = gateway.build_payout(world.agent, str(Keypair().pubkey()), 1_000_000, reference="qv:d4242:a1")
    send(gateway, rogue)
    confirm(gateway, rogue)
    proxy.calls.clear()
    third = reconcile(gateway=counted)
    assert (third.checked, third.unrecorded) == (0, 1)
    assert third.signatures_scanned == 2  # the funding and the rogue payout only
    assert [m["signature"] for m in third.mismatches] == [rogue.signature]
    assert proxy.methods().count("getTransaction") == 2
    assert ReconciliationBookmark.objects.get(agent_wallet=world.subscription.agent_wallet).last_signature == rogue.signature


def test_a_payout_landed_after_the_first_run_is_read_back_by_the_next(localnet, gateway):
    world = paid_world(localnet, gateway, 50_000_000)
    assert reconcile(gateway=gateway).checked == 1
    process_distribution(world.close(20_000_000).distribution.pk, gateway=gateway)
    report = reconcile(gateway=gateway)
    assert (report.checked, report.matched, report.mismatched, report.unrecorded) == (1, 1, 0, 0)
    assert report.signatures_scanned >= 1


def test_the_scan_pages_through_more_signatures_than_one_page(localnet, gateway, settings):
    world = paid_world(localnet, gateway, 50_000_000)
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), 1_000_000)
    rogue = gateway.build_payout(world.agent, str(Keypair().pubkey()), 1_000_000, reference="qv:d4343:a1")
    send(gateway, rogue)
    confirm(gateway, rogue)
    for _ in range(3):  # newer transactions bury the rogue payout past the first page
        localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 1_000)
    settings.QV_CHAIN_SIGNATURE_LIMIT = 2
    report = reconcile(gateway=gateway)
    assert report.unrecorded == 1 and report.signatures_scanned >= 6


def test_an_rpc_failure_keeps_the_bookmark_so_nothing_is_skipped(localnet, gateway):
    world = paid_world(localnet, gateway, 50_000_000)
    dead = make_gateway(type("Dead", (), {"url": "http://127.0.0.1:9"})(), max_attempts=1)
    assert reconcile(gateway=dead).error
    assert not ReconciliationBookmark.objects.exists() and not ReconciledAttempt.objects.exists()
    report = reconcile(gateway=gateway)
    assert (report.checked, report.matched) == (1, 1) and report.signatures_scanned >= 3
    assert ReconciliationBookmark.objects.filter(agent_wallet=world.subscription.agent_wallet).exists()


def test_a_replica_behind_cannot_say_a_landed_payout_is_missing(localnet, replica, gateway):
    """docs/design.md, "Expired only from a caught-up node": "not found" counts only from an
    endpoint that has reached the slot the payout landed in."""
    localnet.rpc("localnet_advanceSlots", 60)  # a replica 50 slots behind is behind genesis + 10
    paid_world(localnet, gateway, 50_000_000)
    localnet.rpc("localnet_setFaults", {"endpoints": {"replica": {"lagSlots": 50}}})
    assert replica.rpc("getTransaction", PayoutAttempt.objects.get().signature, {"encoding": "json"}) is None
    only_behind = reconcile(gateway=make_gateway(localnet, urls=[replica.url], max_attempts=1))
    assert "RpcUnavailable" in only_behind.error and only_behind.checked == 0
    assert not Alert.objects.filter(kind="reconciliation_mismatch").exists()
    assert not ReconciledAttempt.objects.exists()  # not read: the next run reads it
    behind_first = make_gateway(localnet, urls=[replica.url, localnet.url])  # no slot probes: the replica is asked first
    report = reconcile(gateway=behind_first)
    assert (report.checked, report.matched, report.mismatched, report.error) == (1, 1, 0, "")


# --- payouts of several legs: one transfer per leg, in order ----------------------------------------
@pytest.fixture
def splits(settings):
    """A 10 % platform fee to a treasury whose token account exists, and the default referral
    rates (5 / 2 / 1 %)."""
    treasury = Keypair().pubkey()
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = 1_000, str(treasury)
    settings.QV_REFERRAL_BPS = (500, 200, 100)
    return treasury


def split_distribution(localnet, world: World) -> tuple[Distribution, list[DistributionLeg]]:
    """A 50 USDC close of a creator referred by one wallet: a 5 USDC share in three legs
    (creator 4.25, platform 0.5, level 1 0.25 USDC), funded for its payout."""
    link_referral(world.subscription.bot.creator.address, str(Keypair().pubkey()))
    dist = world.close(50_000_000, realize=False).distribution
    return dist, fund_payout(localnet, world, dist)


def test_a_payout_of_three_legs_matches_the_chain(localnet, gateway, splits):
    world = make_world(localnet)
    dist, legs = split_distribution(localnet, world)
    assert [(leg.role, leg.amount) for leg in legs] == [
        (LegRole.CREATOR, 4_250_000), (LegRole.PLATFORM, 500_000), (LegRole.REFERRAL_1, 250_000),
    ]
    pay_legs(gateway, world, dist, legs)
    assert world.creator_usdc() == 4_250_000
    report = reconcile(gateway=gateway)
    assert (report.checked, report.matched, report.mismatched, report.unrecorded, report.error) == (1, 1, 0, 0, "")
    assert report.mismatches == []
    assert not Alert.objects.filter(kind="reconciliation_mismatch").exists()


def test_a_split_share_paid_by_the_engine_matches_the_chain(localnet, gateway, splits):
    world = make_world(localnet)
    referrer = Keypair().pubkey()
    link_referral(world.subscription.bot.creator.address, str(referrer))
    for wallet in (splits, referrer):
        localnet.rpc("localnet_fundUsdc", str(wallet), 1)  # the other legs' token accounts exist
    dist = process_distribution(world.close(50_000_000).distribution.pk, gateway=gateway)
    [attempt] = PayoutAttempt.objects.filter(distribution=dist)
    assert [amount for _, _, amount in attempt.legs] == [4_250_000, 500_000, 250_000]
    report = reconcile(gateway=gateway)
    assert (report.checked, report.matched, report.mismatched, report.unrecorded) == (1, 1, 0, 0)


def test_a_leg_amount_recorded_differently_is_a_mismatch_of_that_leg(localnet, gateway, splits):
    world = make_world(localnet)
    dist, legs = split_distribution(localnet, world)
    attempt = pay_legs(gateway, world, dist, legs)
    wrong = [list(leg) for leg in attempt.legs]
    wrong[2][2] = 240_000  # the ledger says level 1 got 0.24 USDC; the chain paid 0.25
    PayoutAttempt.objects.filter(pk=attempt.pk).update(legs=wrong)
    report = reconcile(gateway=gateway)
    by_kind = {m["kind"]: m for m in report.mismatches}
    assert sorted(by_kind) == ["attempt", "leg_sum"]
    assert by_kind["attempt"]["fields"] == ["legs[2].amount"]
    assert by_kind["attempt"]["ours"]["legs"][2] == [legs[2].pk, legs[2].wallet, 240_000]
    assert by_kind["attempt"]["chain"]["transfers"][2] == {
        "destination_owner": legs[2].wallet, "destination_ata": str(get_associated_token_address(Pubkey.from_string(legs[2].wallet), USDC)),
        "requested": 250_000, "amount": 250_000,
    }
    leg_sum = by_kind["leg_sum"]
    assert (leg_sum["distribution"], leg_sum["leg"], leg_sum["fields"]) == (dist.pk, legs[2].pk, ["paid"])
    assert leg_sum["ours"] == {"paid": 250_000, "role": "referral_1", "wallet": legs[2].wallet}
    assert leg_sum["chain"] == {"landed_attempts_total": 240_000}
    assert (report.checked, report.matched, report.mismatched) == (1, 0, 2)
    alerts = Alert.objects.filter(kind="reconciliation_mismatch")
    assert sorted(a.data["mismatch"]["kind"] for a in alerts) == ["attempt", "leg_sum"]
    assert any(f"leg {legs[2].pk}" in a.subject for a in alerts)


def test_a_leg_paid_on_chain_but_missing_from_the_record_is_a_mismatch(localnet, gateway, splits):
    world = make_world(localnet)
    dist, legs = split_distribution(localnet, world)
    pay_legs(gateway, world, dist, legs, recorded=legs[:2])  # level 1 was paid; the record forgot it
    report = reconcile(gateway=gateway)
    # the ledger's sums agree with its record (level 1 still owed, paid by no attempt); the chain does not
    [mismatch] = report.mismatches
    assert (mismatch["kind"], mismatch["fields"]) == ("attempt", ["amount", "legs"])  # 4.75 recorded, 5 moved
    assert (mismatch["ours"]["amount"], mismatch["chain"]["amount"]) == (4_750_000, 5_000_000)
    assert [t["destination_owner"] for t in mismatch["chain"]["transfers"]] == [leg.wallet for leg in legs]
    assert len(mismatch["ours"]["legs"]) == 2


def test_a_recorded_leg_the_chain_did_not_pay_is_a_mismatch(localnet, gateway, splits):
    world = make_world(localnet)
    dist, legs = split_distribution(localnet, world)
    attempt = pay_legs(gateway, world, dist, legs, paid=legs[:2], recorded=legs)
    report = reconcile(gateway=gateway)
    [mismatch] = report.mismatches
    assert (mismatch["kind"], mismatch["signature"]) == ("attempt", attempt.signature)
    assert mismatch["fields"] == ["amount", "legs"]
    assert [t["destination_owner"] for t in mismatch["chain"]["transfers"]] == [legs[0].wallet, legs[1].wallet]


def test_a_leg_the_ledger_did_not_credit_is_a_mismatch_of_its_sums(localnet, gateway, splits):
    world = make_world(localnet)
    dist, legs = split_distribution(localnet, world)
    pay_legs(gateway, world, dist, legs)
    DistributionLeg.objects.filter(pk=legs[1].pk).update(paid=0, owed=F("amount"))  # the platform's leg left owed
    report = reconcile(gateway=gateway)
    by_kind = {m["kind"]: m for m in report.mismatches}
    assert sorted(by_kind) == ["ledger_sum", "leg_sum"]
    assert by_kind["ledger_sum"]["fields"] == ["legs_paid"]  # paid equals the attempts, not the legs
    assert by_kind["ledger_sum"]["ours"] == {"paid": 5_000_000, "legs_paid": 4_500_000}
    assert by_kind["ledger_sum"]["chain"] == {"landed_attempts_total": 5_000_000}
    assert (by_kind["leg_sum"]["leg"], by_kind["leg_sum"]["ours"]["paid"]) == (legs[1].pk, 0)
    assert by_kind["leg_sum"]["chain"] == {"landed_attempts_total": 500_000}
    assert report.matched == 1  # the chain and the attempt agree; the ledger's sums do not


def test_an_attempt_leg_of_another_wallet_or_distribution_is_a_mismatch(localnet, gateway, splits):
    world = make_world(localnet)
    dist, legs = split_distribution(localnet, world)
    other = world.close(10_000_000, realize=False).distribution.legs.get(role=LegRole.CREATOR)
    attempt = pay_legs(gateway, world, dist, legs)
    DistributionLeg.objects.filter(pk=legs[1].pk).update(wallet=str(Keypair().pubkey()))  # the leg's row says another wallet
    changed = [list(leg) for leg in attempt.legs]
    changed[2][0] = other.pk  # names a leg of another distribution
    PayoutAttempt.objects.filter(pk=attempt.pk).update(legs=changed)
    report = reconcile(gateway=gateway)
    strays = [m for m in report.mismatches if m["kind"] == "attempt_leg"]
    assert [(m["fields"], m["ours"]["leg"][0]) for m in strays] == [(["wallet"], legs[1].pk), (["leg"], other.pk)]
    assert all(m["signature"] == attempt.signature and m["distribution"] == dist.pk for m in strays)
    # neither was credited to a leg by the attempt: both legs' paid differ from what it paid them
    assert sorted(m["leg"] for m in report.mismatches if m["kind"] == "leg_sum") == [legs[1].pk, legs[2].pk]


def test_an_attempt_recorded_without_legs_is_one_creator_leg(localnet, gateway, splits):
    """No attempt lacks legs after the data migration; one that does is compared as one
    transfer to its destination, and credited to its distribution's creator leg."""
    world = make_world(localnet)
    dist = world.close(50_000_000, realize=False).distribution  # nobody referred this creator
    creator_leg, platform_leg = fund_payout(localnet, world, dist)
    attempt = pay_legs(gateway, world, dist, [creator_leg])  # the platform's leg is still owed
    PayoutAttempt.objects.filter(pk=attempt.pk).update(legs=[])
    report = reconcile(gateway=gateway)
    assert (report.checked, report.matched, report.mismatches) == (1, 1, [])

    DistributionLeg.objects.filter(pk=creator_leg.pk).update(paid=0, owed=F("amount"))
    DistributionLeg.objects.filter(pk=platform_leg.pk).update(paid=F("amount") - 1, owed=1)
    ReconciledAttempt.objects.all().delete()  # read it again
    by_leg = {m["leg"]: m["chain"]["landed_attempts_total"] for m in reconcile(gateway=gateway).mismatches
              if m["kind"] == "leg_sum"}
    assert by_leg == {creator_leg.pk: 4_500_000, platform_leg.pk: 0}


def test_a_payout_of_several_legs_sent_outside_the_ledger_is_found(localnet, gateway, splits):
    world = make_world(localnet)
    dist, legs = split_distribution(localnet, world)
    pay_legs(gateway, world, dist, legs)
    localnet.rpc("localnet_fundUsdc", str(world.agent.pubkey()), 1_000_000)
    rogue = gateway.build_payout(world.agent, str(Keypair().pubkey()), 700_000, reference="qv:d777:a1",
                                 more_legs=[(legs[1].wallet, 300_000)])
    send(gateway, rogue)
    confirm(gateway, rogue)
    report = reconcile(gateway=gateway)
    assert (report.checked, report.matched, report.mismatched, report.unrecorded) == (1, 1, 0, 1)
    [unrecorded] = report.mismatches
    assert (unrecorded["kind"], unrecorded["signature"]) == ("unrecorded_payout", rogue.signature)
    assert unrecorded["chain"]["amount"] == 1_000_000
    assert [(t["destination_owner"], t["amount"]) for t in unrecorded["chain"]["transfers"]] == [
        (str(rogue.destination_owner), 700_000), (legs[1].wallet, 300_000),
    ]
