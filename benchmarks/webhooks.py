"""Webhook delivery under the engine benchmark's burst: N subscribers of one bot close in
profit on one signal and a django-q2 cluster (2 workers, PostgreSQL + Redis) pays them through
the local node, with ``QV_WEBHOOK_URLS`` pointing at a receiver in its own process that checks
every signature.

Prints payouts/s (as ``benchmarks/engine.py``), webhook events delivered/s (first close reported
to the last event received), commit-to-receipt latency p50/p99 (``WebhookEvent.created_at`` to
arrival), and checks that every event arrived exactly once, correctly signed, in order per
subscription. ``--no-webhooks`` runs the same burst without endpoints (the engine's baseline).

Usage: ``.venv/bin/python benchmarks/webhooks.py [--subscribers 300] [--no-webhooks]``
(PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379; uses database ``qv_bench_webhooks``
and Redis db 14, both wiped).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import engine as bench  # noqa: E402 - the engine benchmark's world, burst and CPU accounting

BENCH_DB = "qv_bench_webhooks"
SECRET = "bench-webhook-secret-0123456789abcdef"


def serve(port: int) -> None:
    """The receiver (``--serve PORT``): verifies each POST's signature, records (arrival unix
    time, event id, subscription id); ``GET /stats`` answers them as JSON."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[float, str, str]] = []
    bad: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a platform's web server answers

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            now = time.time()
            timestamp = self.headers["X-QV-Timestamp"]
            expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            event = json.loads(body)
            if not hmac.compare_digest(expected, self.headers["X-QV-Signature"]) or abs(now - int(timestamp)) > 300:
                bad.append(event["id"])
            received.append((now, event["id"], event["data"].get("subscription_id", "")))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            payload = json.dumps({"received": received, "bad": bad}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--intake-threads", type=int, default=8)
    parser.add_argument("--no-webhooks", action="store_true")
    parser.add_argument("--backlog", type=int, default=0,
                        help="then write this many more events (batches of 128, 300 subscriptions) and time the drain")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)

    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    from cryptography.fernet import Fernet

    rpc_port, hook_port = bench.free_port(), bench.free_port()
    bench.BENCH_DB = BENCH_DB  # CPU accounting counts this run's PostgreSQL backends
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/14",
        "SOLANA_RPC_URLS": f"http://127.0.0.1:{rpc_port}",
        "QV_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "QV_Q_WORKERS": str(args.workers), "QV_LOG_LEVEL": "WARNING", "QV_DB_CONN_MAX_AGE": "600",
        "QV_DEBUG": "0", "QV_SECRET_KEY": "bench-secret-key", "QV_INTAKE_SECRET": "bench-intake",
        "QV_ADMIN_SECRET": "bench-admin",
        "QV_WEBHOOK_URLS": "" if args.no_webhooks else f"http://127.0.0.1:{hook_port}/hooks",
        "QV_WEBHOOK_SECRET": SECRET,
    }
    node, manage = bench.prepare(env, rpc_port)
    procs = [node, subprocess.Popen([sys.executable, __file__, "--serve", str(hook_port)], start_new_session=True)]
    try:
        url = f"http://127.0.0.1:{rpc_port}"
        subscriptions, creator = bench.build_world(url, args.subscribers)
        procs.append(subprocess.Popen([*manage, "qcluster"], env=env, start_new_session=True))
        bench.wait_until_idle(procs[0].pid, procs[2].pid)
        cpu_before = bench.cpu_by_role(procs[0].pid, procs[2].pid)
        started = time.time()
        rate, p50, p99, paid = bench.run_signal(url, subscriptions, creator, args.intake_threads)
        print(f"subscribers: {args.subscribers}, workers: {args.workers}, webhooks: {not args.no_webhooks}")
        print(f"payouts/s (first intake to last confirmed):  {rate:8.1f}")
        print(f"intake-to-confirmed latency p50 / p99:       {p50:8.2f} s / {p99:.2f} s")
        if not args.no_webhooks:
            report_webhooks(hook_port, started, paid)
        cpu_after = bench.cpu_by_role(procs[0].pid, procs[2].pid)
        for role in cpu_after:
            used = cpu_after[role] - cpu_before.get(role, 0.0)
            print(f"CPU {role:28s} {used:6.2f} s  ({used / paid * 1000:6.1f} ms per payout)")
        if args.backlog and not args.no_webhooks:
            drain_backlog(hook_port, args.backlog)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def report_webhooks(port: int, started: float, paid: int) -> None:
    """Wait until every delivery is decided; print events/s, latency, and check the receipts."""
    import httpx

    from profitshare.models import WebhookDelivery, WebhookEvent

    deadline = time.time() + 300
    while WebhookDelivery.objects.filter(status="pending").exists() and time.time() < deadline:
        time.sleep(0.2)
    stats = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=30).json()
    received = stats["received"]
    events = {str(e.uuid): e for e in WebhookEvent.objects.all()}
    arrivals = {event_id: at for at, event_id, _ in received}
    latencies = [arrivals[i] - e.created_at.timestamp() for i, e in events.items() if i in arrivals]
    last = max(at for at, _, _ in received)
    in_order = all(
        [events[i].pk for _, i, key in received if key == k] == sorted(events[i].pk for _, i, key in received if key == k)
        for k in {key for _, _, key in received}
    )
    print(f"webhook events written / received / distinct:  {len(events)} / {len(received)} / {len(arrivals)}")
    print(f"bad signatures: {len(stats['bad'])}; failed deliveries: "
          f"{WebhookDelivery.objects.filter(status='failed').count()}; in order per subscription: {in_order}")
    print(f"events/s delivered (first intake to last received): {len(arrivals) / (last - started):8.1f}")
    print(f"commit-to-receipt latency p50 / p99:          {bench.percentile(latencies, 0.5):8.2f} s / "
          f"{bench.percentile(latencies, 0.99):.2f} s")
    if len(arrivals) != len(events) or stats["bad"] or not in_order or len(events) < paid:
        raise SystemExit("webhooks: not every event arrived once, signed and in order")


def drain_backlog(port: int, count: int) -> None:
    """Write ``count`` events as the engine would (one transaction per 128) while the cluster
    is idle; print how fast its delivery tasks get them to the receiver."""
    import httpx
    from django.db import transaction

    from profitshare.models import WebhookDelivery
    from profitshare.services.webhooks import PendingWebhook, emit_many

    before = len(httpx.get(f"http://127.0.0.1:{port}/stats", timeout=30).json()["received"])
    started = time.time()
    for first in range(0, count, 128):
        with transaction.atomic():
            emit_many(PendingWebhook("distribution.paid", f"bench-{n % 300}", {"subscription_id": f"bench-{n % 300}", "n": n})
                      for n in range(first, min(count, first + 128)))
    written = time.time() - started
    while WebhookDelivery.objects.filter(status="pending").exists() and time.time() < started + 600:
        time.sleep(0.1)
    received = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=30).json()["received"][before:]
    last = max(at for at, _, _ in received)
    print(f"backlog: {count} events written in {written:.2f} s ({written / count * 1000:.2f} ms each), "
          f"{len(received)} received; delivered/s (first write to last received): {len(received) / (last - started):8.1f}")


if __name__ == "__main__":
    main()
