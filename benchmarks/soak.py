"""Fault soak (issue 5, the reliability bar): many closes across subscriptions and creators
while the local node drops sends, loses responses, answers 429/503 and delivers partial
withdraws, with one worker process SIGKILLed mid-payout. Then, read from the chain and the
database: double payments (must be 0), closes whose ``paid + owed + carried + voided != share +
carry_in`` (must be 0), creators whose on-chain USDC differs from what the ledger says was paid
(must be 0), and the reconciliation's mismatches (must be 0). Prints those figures and the time.

Usage: ``.venv/bin/python benchmarks/soak.py [--closes 10000 --subscriptions 200 --creators 10]``
(PostgreSQL at 127.0.0.1:5432; uses database ``qv_soak``, wiped; starts its own local node).
First cut (issue 5): the in-process rounds and the checks work; with the default fault mix a
few IOUs are still left ``processing`` at the end (see "IOU retries that raised"), so the
"still owed" figure is not yet 0 and it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
FAULTS = {"seed": 7, "dropRate": 0.1, "dropPrograms": [TOKEN_PROGRAM], "loseResponseRate": 0.05,
          "httpErrorRate": 0.05, "partialWithdrawRatio": 0.6}
KILL_SCRIPT = """
import django; django.setup()
from profitshare.services import engine
while engine.process_pending():
    pass
"""


@dataclass
class SoakResult:
    closes: int
    seconds: float
    paid: int
    double_payments: int
    unbalanced: int
    creators_off: int
    reconciliation_mismatches: int
    still_owed: int
    killed_worker: bool
    retry_errors: dict

    def lines(self) -> list[str]:
        return [
            f"closes: {self.closes} in {self.seconds:.1f} s; paid {self.paid} USDC base units",
            f"double payments: {self.double_payments}",
            f"closes where paid + owed + carried + voided != share + carry_in: {self.unbalanced}",
            f"creators whose chain balance differs from the ledger: {self.creators_off}",
            f"reconciliation mismatches: {self.reconciliation_mismatches}",
            f"still owed at the end: {self.still_owed}; worker SIGKILLed mid-payout: {self.killed_worker}",
            f"IOU retries that raised: {self.retry_errors}",
        ]


def _rpc(client, url, method, *params):
    body = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


def run_soak(rpc_url: str, *, closes: int, subscriptions: int, creators: int, seed: int = 1,
             worker_env: dict | None = None, max_rounds: int = 60, gateway=None) -> SoakResult:
    """Run the soak on the configured database against the node at ``rpc_url`` (settings must
    point the gateway there). ``worker_env``: environment of the worker process that is
    SIGKILLed mid-payout (None: no worker is killed); ``gateway``: the chain gateway of this
    process (default: the engine's)."""
    import httpx
    from django.db.models import F, Sum
    from solders.keypair import Keypair
    from solders.pubkey import Pubkey
    from spl.token.instructions import get_associated_token_address

    from profitshare.chain import keys
    from profitshare.models import (
        IOU,
        AgentWallet,
        AttemptStatus,
        CreatorWallet,
        Distribution,
        DistributionStatus,
        IouStatus,
        PayoutAttempt,
        Policy,
        PublishedBot,
        Subscription,
    )
    from profitshare.services import engine, ious, reconciliation, resolver
    from profitshare.services.intake import CloseReport, record_close

    rng = random.Random(seed)
    gateway = gateway or engine.default_gateway()
    client = httpx.Client(timeout=30)
    started = time.monotonic()
    creator_rows = [CreatorWallet.objects.create(address=str(Keypair().pubkey())) for _ in range(creators)]
    bots = [PublishedBot.objects.create(bot_id=f"soak-bot-{seed}-{i}", creator=c, name=f"Soak {i}",
                                        profit_share_bps=1_000, policy=Policy.PER_TRADE)
            for i, c in enumerate(creator_rows)]
    subs = []
    for i in range(subscriptions):
        kp = Keypair()
        wallet = AgentWallet.objects.create(pubkey=str(kp.pubkey()), encrypted_secret=keys.encrypt_keypair(kp))
        bot = bots[i % len(bots)]
        subs.append(Subscription.objects.create(
            subscription_id=f"soak-{seed}-{i}", bot=bot, subscriber_wallet=str(Keypair().pubkey()), agent_wallet=wallet,
            drift_subaccount_id=0, profit_share_bps=bot.profit_share_bps, policy=bot.policy))
        _rpc(client, rpc_url, "requestAirdrop", wallet.pubkey, 1_000_000_000)
        _rpc(client, rpc_url, "localnet_driftDeposit", wallet.pubkey, 0, 10_000_000_000)
    for c in creator_rows:
        _rpc(client, rpc_url, "localnet_fundUsdc", c.address, 1)  # ATA exists; 1 base unit
    for n in range(closes):
        sub = subs[n % len(subs)]
        pnl = rng.randint(1_000_000, 80_000_000)
        _rpc(client, rpc_url, "localnet_driftRealizePnl", sub.agent_wallet.pubkey, 0, pnl)
        record_close(CloseReport(close_id=f"soak-{seed}-{n}", subscription_id=sub.subscription_id, market_index=0,
                                 realized_pnl=pnl, kind="full", closed_at=datetime.now(UTC)))
    _rpc(client, rpc_url, "localnet_setFaults", FAULTS)
    killed = False
    retry_errors: dict[str, int] = {}
    if worker_env is not None:
        worker = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT], env=worker_env, cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            if PayoutAttempt.objects.exists():  # mid-payout: an attempt is recorded
                break
            time.sleep(0.05)
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            killed = True
        worker.wait()
    for round_number in range(max_rounds):
        if round_number == max_rounds // 2:
            _rpc(client, rpc_url, "localnet_setFaults", {})  # the outage ends; everything must settle
        while engine.process_pending(gateway=gateway):
            pass
        resolver.resolve_stale(gateway=gateway, now=datetime.now(UTC) + timedelta(hours=1))
        for iou_id in ious.claim_due_ious(now=datetime.now(UTC) + timedelta(days=1), limit=500):
            try:
                engine.retry_iou(iou_id, gateway=gateway)
            except Exception as exc:  # noqa: BLE001 - counted and shown; the next round retries
                retry_errors[type(exc).__name__] = retry_errors.get(type(exc).__name__, 0) + 1
        _rpc(client, rpc_url, "localnet_advanceSlots", 151)  # unlanded blockhashes expire
        busy = Distribution.objects.filter(status__in=(DistributionStatus.PENDING, DistributionStatus.PROCESSING)).exists()
        owing = IOU.objects.filter(status__in=(IouStatus.OPEN, IouStatus.PROCESSING, IouStatus.EXPIRED)).exists()
        if not busy and not owing:
            break
    _rpc(client, rpc_url, "localnet_setFaults", {})
    landed = dict(PayoutAttempt.objects.filter(status=AttemptStatus.LANDED).values_list("distribution_id")
                  .annotate(total=Sum("amount")))
    double = unbalanced = 0
    for dist in Distribution.objects.all():
        if landed.get(dist.pk, 0) != dist.paid or dist.paid > dist.share + dist.carry_in:
            double += 1
        if dist.paid + dist.owed + dist.carried + dist.voided != dist.share + dist.carry_in:
            unbalanced += 1
    usdc = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
    creators_off = 0
    for c in creator_rows:
        ata = get_associated_token_address(Pubkey.from_string(c.address), usdc)
        on_chain = int(_rpc(client, rpc_url, "getTokenAccountBalance", str(ata))["value"]["amount"]) - 1
        ledger = Distribution.objects.filter(creator=c).aggregate(t=Sum("paid"))["t"] or 0
        creators_off += on_chain != ledger
    report = reconciliation.reconcile(gateway=gateway)
    owed = IOU.objects.filter(status__in=(IouStatus.OPEN, IouStatus.PROCESSING, IouStatus.EXPIRED)).aggregate(
        t=Sum(F("amount") - F("paid_amount")))["t"] or 0
    client.close()
    return SoakResult(
        closes=closes, seconds=time.monotonic() - started,
        paid=PayoutAttempt.objects.filter(status=AttemptStatus.LANDED).aggregate(t=Sum("amount"))["t"] or 0,
        double_payments=double, unbalanced=unbalanced, creators_off=creators_off,
        reconciliation_mismatches=report.mismatched + report.unrecorded + (1 if report.error else 0),
        still_owed=owed, killed_worker=killed, retry_errors=retry_errors,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--closes", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=200)
    parser.add_argument("--creators", type=int, default=10)
    args = parser.parse_args()
    import psycopg
    from cryptography.fernet import Fernet

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS qv_soak WITH (FORCE)")
        conn.execute("CREATE DATABASE qv_soak")
    from profitshare.localnet.node import LocalNode  # noqa: F401 - fail early without the node
    env = {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/qv_soak",
        "QV_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "QV_LOG_LEVEL": "WARNING", "QV_STALE_ATTEMPT_SECONDS": "0", "DJANGO_SETTINGS_MODULE": "quantumvault.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from profitshare.localnet.server import RpcHttpServer

    call_command("migrate", verbosity=0)
    server = RpcHttpServer(LocalNode(slot_ms=0), "127.0.0.1", 0)
    server.start()
    os.environ["SOLANA_RPC_URLS"] = server.url
    from django.conf import settings

    settings.QV_RPC_URLS = [server.url]
    try:
        from profitshare.chain.gateway import get_gateway

        gateway = get_gateway()
        gateway.confirm_timeout = 2.0  # the node's clock is manual: a dropped send never confirms
        result = run_soak(server.url, closes=args.closes, subscriptions=args.subscriptions, creators=args.creators,
                          worker_env={**os.environ}, gateway=gateway)
    finally:
        server.stop()
    print("\n".join(result.lines()))
    from django.db.models import Count

    from profitshare.models import IOU

    print("IOUs by status and reason:", list(IOU.objects.values("status", "reason").annotate(n=Count("id"))))


if __name__ == "__main__":
    main()
