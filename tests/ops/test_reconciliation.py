"""Reconciliation (docs/design.md, "Reconciliation"): landed payouts read back from the local
node, agent wallets scanned for payouts the ledger does not know; mismatches alert with both sides; a report is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from solders.keypair import Keypair
from solders.signature import Signature

from profitshare.models import Alert, AuditEvent, PayoutAttempt
from profitshare.models.reconciliation import (
    ReconciledAttempt,
    ReconciliationBookmark,
    ReconciliationReport,
)
from profitshare.services.engine import process_distribution
from profitshare.services.reconciliation import latest_report, reconcile
from profitshare.tasks import reconcile_task
from tests.chain.gateway_support import confirm, make_gateway, send
from tests.world import make_world

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
