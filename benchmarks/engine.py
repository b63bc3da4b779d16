"""Engine throughput: N subscribers of one bot close in profit on one signal (fan-out to one
creator), paid by a django-q2 cluster with 2 workers on PostgreSQL + the Redis broker, against
the local node.

Prints confirmed payouts/s, p50/p99 intake-to-confirmed latency (``TradeClose.received_at`` to
the landed attempt's ``resolved_at``), transactions, signatures and lamports per payout and the
path each payout took, and the ratio to the bare JSON-RPC transfer rate (one
solana-py client sending pre-built transfers) measured in the same run. Checks from the chain
that the creator received exactly N shares. Floor: 100 confirmed payouts/s; aim: half the bare
rate.

With ``--referral-levels 3`` the creator has a three-level referral chain (the default rates,
5 / 2 / 1 % of the share), so every payout carries four legs in its one transaction; the chain
check covers every recipient.

Usage: ``.venv/bin/python benchmarks/engine.py [--subscribers 200] [--workers 2] [--referral-levels 0..3]``
(PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379; uses database ``qv_bench`` and Redis
db 15, both wiped).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "qv_bench"
AGENT_LAMPORTS = 100_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--intake-threads", type=int, default=8, help="concurrent intake requests (web workers)")
    parser.add_argument("--referral-levels", type=int, default=0, choices=range(4),
                        help="levels of the creator's referral chain (each a leg of every payout)")
    args = parser.parse_args()

    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    from cryptography.fernet import Fernet

    rpc_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "SOLANA_RPC_URLS": f"http://127.0.0.1:{rpc_port}",
        "QV_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "QV_Q_WORKERS": str(args.workers),
        "QV_LOG_LEVEL": "WARNING",
        "QV_DB_CONN_MAX_AGE": "600",
        # production settings: DEBUG off (it wraps every query in the debug cursor)
        "QV_DEBUG": "0",
        # production settings refuse weak secrets: fresh ones per run, shared by every process
        "QV_SECRET_KEY": secrets.token_urlsafe(64),
        "QV_INTAKE_SECRET": secrets.token_urlsafe(32),
        "QV_ADMIN_SECRET": secrets.token_urlsafe(32),
    }
    node, manage = prepare(env, rpc_port)
    cluster = None
    try:
        url = f"http://127.0.0.1:{rpc_port}"
        bare = bare_rpc_rate(url)
        print(f"bare JSON-RPC transfers (1 solana-py client): {bare:8.1f} /s")
        subscriptions, creator, referrers = build_world(url, args.subscribers, args.referral_levels)
        cluster = subprocess.Popen([*manage, "qcluster"], env=env, start_new_session=True)
        wait_until_idle(node.pid, cluster.pid)  # workers started and warmed (imports, gateway)
        cpu_before = cpu_by_role(node.pid, cluster.pid)
        rate, p50, p99, paid = run_signal(url, subscriptions, creator, referrers, args.intake_threads)
        cpu_after = cpu_by_role(node.pid, cluster.pid)
        for role in cpu_after:
            used = cpu_after[role] - cpu_before.get(role, 0.0)
            print(f"CPU {role:28s} {used:6.2f} s  ({used / paid * 1000:6.1f} ms per payout)")
        print(f"subscribers: {args.subscribers}, workers: {args.workers}, referral levels: {args.referral_levels}")
        print(f"confirmed payouts:                           {paid:8d}")
        print(f"payouts/s (first intake to last confirmed):  {rate:8.1f}  (floor 100)")
        print(f"intake-to-confirmed latency p50 / p99:       {p50:8.2f} s / {p99:.2f} s")
        print(f"ratio to bare JSON-RPC transfers:            {rate / bare:8.2f}  (aim 0.50)")
    finally:
        for proc in (cluster, node):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def prepare(env: dict[str, str], rpc_port: int) -> tuple[subprocess.Popen, list[str]]:
    """Set this process up on ``env`` (Django, the Redis database flushed, migrations) and start
    the local node on ``rpc_port``; returns the node's process once it answers, and the
    ``manage.py`` command line."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "quantumvault.settings"
    import django

    django.setup()
    import httpx
    import redis
    from django.core.management import call_command

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    call_command("migrate", verbosity=0)
    manage = [sys.executable, str(ROOT / "manage.py")]
    node = subprocess.Popen(
        [*manage, "localnet", "--port", str(rpc_port), "--slot-ms", "400"], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{rpc_port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/health", timeout=1).text == "ok":
                break
        except httpx.TransportError:
            time.sleep(0.1)
    return node, manage


def wait_until_idle(node_pid: int, cluster_pid: int, timeout: float = 120.0) -> None:
    """Wait until the qcluster's processes stop using CPU (start-up done), so start-up is not
    counted as payout work."""
    role = "qcluster (2 workers + monitor)"
    deadline = time.time() + timeout
    last, quiet = cpu_by_role(node_pid, cluster_pid).get(role, 0.0), 0
    while time.time() < deadline and quiet < 3:
        time.sleep(0.5)
        now = cpu_by_role(node_pid, cluster_pid).get(role, 0.0)
        quiet = quiet + 1 if now - last < 0.05 and now > 0 else 0
        last = now


def cpu_by_role(node_pid: int, cluster_pid: int) -> dict[str, float]:
    """CPU seconds (user + system, /proc) used so far by the local node, the qcluster (all its
    processes: the cluster and the children it supervises), PostgreSQL, Redis and this
    benchmark process (intake).

    PostgreSQL counts this run's live backends plus what the postmaster's exited children used
    (``cutime`` + ``cstime``: a backend's CPU moves there when it exits, as each intake request's
    connection does), so a difference of two readings is the server's CPU in between, every
    backend included (on a quiet server: exited backends of other databases count too)."""
    tick = os.sysconf("SC_CLK_TCK")
    roles: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pgid, seconds = int(fields[2]), (int(fields[11]) + int(fields[12])) / tick
        if pgid == node_pid:
            role = "local node"
        elif pgid == cluster_pid or " qcluster " in f"{cmd} ":  # the supervised children start their own sessions
            role = "qcluster (2 workers + monitor)"
        elif f" {BENCH_DB} " in cmd:  # this run's live PostgreSQL backends
            role = "postgresql"
        elif "postgres" in cmd and " -D " in cmd:  # the postmaster: its exited backends' CPU
            role, seconds = "postgresql", (int(fields[13]) + int(fields[14])) / tick
        elif "redis-server" in cmd:
            role = "redis"
        elif int(entry.name) == os.getpid():
            role = "benchmark (intake threads)"
        else:
            continue
        roles[role] = roles.get(role, 0.0) + seconds
    return roles


def bare_rpc_rate(url: str, transfers: int = 500) -> float:
    """Transfers/s by one bare solana-py client (build, sign, send; ATA exists)."""
    from solana.rpc.api import Client
    from solders.keypair import Keypair

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from chain import transfer_tx

    client = Client(url)
    payer, destination = Keypair(), Keypair().pubkey()
    client._provider.session.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "requestAirdrop", "params": [str(payer.pubkey()), 10**12]})
    for owner, amount in ((payer.pubkey(), 10**12), (destination, 1)):
        client._provider.session.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "localnet_fundUsdc", "params": [str(owner), amount]}
        )
    blockhash = client.get_latest_blockhash().value.blockhash
    started = time.perf_counter()
    for n in range(transfers):
        client.send_transaction(transfer_tx(payer, destination, n + 1, blockhash))
    return transfers / (time.perf_counter() - started)


def build_world(url: str, subscribers: int, referral_levels: int = 0):
    """One creator, one bot at 10 %, ``subscribers`` subscriptions with SOL and Drift collateral;
    the creator's referral chain of ``referral_levels`` wallets (each with its USDC token account).
    Returns ``(subscriptions, creator, [(referrer, bps)])``."""
    import httpx
    from solders.keypair import Keypair

    from profitshare.services.bots import publish_bot
    from profitshare.services.subscriptions import create_subscription

    rpc = httpx.Client(base_url=url, timeout=30)

    def call(method, *params):
        return rpc.post("/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()

    creator = str(Keypair().pubkey())
    publish_bot(bot_id="bench-bot", creator_wallet=creator, name="Bench", profit_share_bps=1_000, policy="per_trade", actor="bench")
    subs = []
    for n in range(subscribers):
        sub = create_subscription(
            subscription_id=f"bench-{n}", bot_id="bench-bot", subscriber_wallet=str(Keypair().pubkey()),
            drift_subaccount_id=0, actor="bench",
        ).subscription
        call("requestAirdrop", sub.agent_wallet.pubkey, AGENT_LAMPORTS)
        call("localnet_driftDeposit", sub.agent_wallet.pubkey, 0, 1_000_000_000)
        subs.append(sub)
    call("localnet_fundUsdc", creator, 1)  # the creator's ATA exists (the common case)
    from django.conf import settings

    from profitshare.services.referrals import link_referral

    referrers, wallet = [], creator
    for bps in tuple(settings.QV_REFERRAL_BPS)[:referral_levels]:
        referrer = str(Keypair().pubkey())
        link_referral(wallet, referrer)
        call("localnet_fundUsdc", referrer, 1)
        referrers.append((referrer, bps))
        wallet = referrer
    return subs, creator, referrers


def run_signal(url: str, subscriptions, creator: str, referrers: list[tuple[str, int]], threads: int):
    """Every subscriber closes +10 USDC; record all closes, wait until every payout is decided."""
    import httpx

    from profitshare.models import AttemptStatus, Distribution, PayoutAttempt, TradeClose
    from profitshare.services.intake import CloseReport, record_close
    from profitshare.tasks import enqueue_distribution

    rpc = httpx.Client(base_url=url, timeout=30)
    for sub in subscriptions:
        rpc.post("/", json={"jsonrpc": "2.0", "id": 1, "method": "localnet_driftRealizePnl", "params": [sub.agent_wallet.pubkey, 0, 10_000_000]})
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def intake(numbered):
        n, sub = numbered
        record_close(
            CloseReport(f"bench-close-{n}", sub.subscription_id, 0, 10_000_000, "full", datetime.now(UTC)),
            on_commit=enqueue_distribution,
        )  # each thread keeps its database connection, as a web worker would

    started = time.time()
    # the platform reports closes concurrently (several web workers): ``threads`` intake threads
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(intake, enumerate(subscriptions)))
        list(pool.map(lambda _: connection.close(), range(threads)))
    print(f"intake of {len(subscriptions)} closes took {time.time() - started:.2f} s")
    deadline = time.time() + 600
    while time.time() < deadline:
        if not Distribution.objects.filter(status__in=["pending", "processing"]).exists():
            break
        time.sleep(0.2)
    landed = PayoutAttempt.objects.filter(status=AttemptStatus.LANDED).select_related("distribution__close")
    latencies = [(a.resolved_at - a.distribution.close.received_at).total_seconds() for a in landed]
    last = max(a.resolved_at for a in landed).timestamp()
    first = TradeClose.objects.order_by("received_at").first().received_at.timestamp()
    first = min(first, started)
    share = 1_000_000  # 10 % of 10 USDC
    legs = [(wallet, share * bps // 10_000) for wallet, bps in referrers]
    legs.insert(0, (creator, share - sum(amount for _, amount in legs)))
    for owner, amount in legs:
        held = rpc.post(
            "/", json={"jsonrpc": "2.0", "id": 1, "method": "getTokenAccountsByOwner",
                       "params": [owner, {"mint": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"}, {"encoding": "jsonParsed"}]},
        ).json()["result"]["value"][0]["account"]["data"]["parsed"]["info"]["tokenAmount"]["amount"]
        expected = 1 + len(landed) * amount
        if int(held) != expected or len(landed) != len(subscriptions):
            raise SystemExit(f"chain disagrees: {owner} holds {held}, expected {expected}; landed {len(landed)}")
    print(f"legs per payout: {len(legs)} (creator {legs[0][1]} base units of {share})")
    print(f"first intake to last confirmed: {last - first:.2f} s")
    print_costs(rpc, subscriptions, len(landed))
    return len(landed) / (last - first), percentile(latencies, 0.5), percentile(latencies, 0.99), len(landed)


def print_costs(rpc, subscriptions, paid: int) -> None:
    """Transactions, signatures and lamports per payout, and which path each payout took: every
    transaction the engine recorded (payout attempts and Drift actions; each has one signature,
    the agent's) and what the agents' SOL balances lost (every agent started with 0.1 SOL)."""
    from collections import Counter

    from profitshare.models import AttemptStatus, DriftAction, PayoutAttempt

    paths = Counter(PayoutAttempt.objects.filter(status=AttemptStatus.LANDED).values_list("path", flat=True))
    transactions = PayoutAttempt.objects.count() + DriftAction.objects.count()
    lamports = 0
    keys = [s.agent_wallet.pubkey for s in subscriptions]
    for start in range(0, len(keys), 100):
        answer = rpc.post("/", json={"jsonrpc": "2.0", "id": 1, "method": "getMultipleAccounts",
                                     "params": [keys[start:start + 100], {"encoding": "base64"}]}).json()
        lamports += sum(a["lamports"] for a in answer["result"]["value"] if a)
    spent = len(keys) * AGENT_LAMPORTS - lamports
    print(f"paths (landed payouts):                      {dict(paths)}")
    print(f"transactions / signatures per payout:        {transactions / paid:8.2f} / {transactions / paid:.2f}")
    print(f"lamports per payout (fees and rent):         {spent / paid:10.1f}")


if __name__ == "__main__":
    main()
