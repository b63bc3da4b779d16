"""Reconciliation (seed 000 #10): landed payouts read back from the local node, agent wallets
scanned for payouts the ledger does not know; mismatches alert with both sides; a report is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from solders.keypair import Keypair
from solders.signature import Signature

from profitshare.models import Alert, AuditEvent, PayoutAttempt
from profitshare.models.ops import ReconciliationReport
from profitshare.services.engine import process_distribution
from profitshare.services.reconciliation import latest_report, reconcile
from profitshare.tasks import reconcile_task
from tests.chain.gateway_support import make_gateway
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
    PayoutAttempt.objects.update(amount=4_000_000)
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
    gateway.send(rogue)
    gateway.confirm(rogue.signature, rogue.last_valid_block_height)
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
