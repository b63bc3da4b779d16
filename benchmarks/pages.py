"""Server time of the HTMX pages with 1,000,000 distributions in PostgreSQL.

Seeds (once; ``--reseed`` to start over) 1,000 creators with two bots each, 20,480 subscriptions,
1,000,000 closes with their distributions over the last 365 days, each split into the
creator's leg and a 1.5 % platform fee to one treasury (93 % paid with a landed payout
attempt, 4 % of them after an IOU that a retry paid; 1 % still owed, as open or expired IOUs,
10,000 pending debts; 6 % carried as dust), one "large" creator holding 10 % of all
distributions, then the earnings rollups and the legs' running totals from that ledger
(``earnings.rebuild``, ``leg_totals.rebuild``: what the engine keeps as it pays) and ``VACUUM ANALYZE``. Each page is then requested in-process through the
whole Django stack (middleware, session, selectors, templates) with ``django.test.Client``:
``--warmup`` requests, then ``--requests`` timed ones. Prints p50/p95/max milliseconds per page
and whether p95 meets the 50 ms target.

Usage: ``.venv/bin/python benchmarks/pages.py [--distributions 1000000] [--requests 60]``
(PostgreSQL at 127.0.0.1:5432; uses database ``qv_bench_pages``, created if missing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "qv_bench_pages"
#: The platform treasury of the seeded splits (a valid address: start-up checks it).
TREASURY = "9pQ1Wq8C7r3ZbYdKXk5n4Ls2Hj6Tg1Vf8Ew3Rm7Ua2Pc"
TARGET_P95_MS = 50.0


def configure(db_url: str) -> None:
    """Production-like settings (DEBUG off) on the benchmark database, then Django."""
    os.environ["DATABASE_URL"] = db_url
    os.environ["QV_DEBUG"] = "0"
    os.environ.setdefault("QV_SECRET_KEY", "bench-secret-key-not-for-production-0123456789-abcdefghij")
    os.environ.setdefault("QV_INTAKE_SECRET", "bench-intake-secret-not-for-production")
    os.environ.setdefault("QV_ADMIN_SECRET", "bench-admin-secret-not-for-production")
    os.environ.setdefault("QV_KEY_ENCRYPTION_KEYS", "ZmRlZmRlZmRlZmRlZmRlZmRlZmRlZmRlZmRlZmRlZmQ=")
    os.environ.setdefault("QV_LOG_LEVEL", "WARNING")
    os.environ["QV_PLATFORM_FEE_BPS"] = "150"
    os.environ["QV_PLATFORM_TREASURY"] = TREASURY
    os.environ["DJANGO_SETTINGS_MODULE"] = "quantumvault.settings"
    import django

    django.setup()


def ensure_database(admin_url: str, name: str) -> None:
    """Create the benchmark database when it does not exist."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


SEED_SQL = """
TRUNCATE profitshare_payoutattempt, profitshare_iou, profitshare_distribution, profitshare_tradeclose,
  profitshare_subscription, profitshare_publishedbot, profitshare_agentwallet, profitshare_creatorwallet,
  profitshare_alert RESTART IDENTITY CASCADE;

-- 1,000 creators (id 1 is the large one), two bots each
INSERT INTO profitshare_creatorwallet (address, telegram_chat_id, created_at)
SELECT 'Creator' || lpad(g::text, 37, 'x'), '', now() - interval '400 days' FROM generate_series(1, 1000) g;
INSERT INTO profitshare_publishedbot (bot_id, creator_id, name, profit_share_bps, policy, created_at, updated_at)
SELECT 'bot-' || g, (g + 1) / 2, 'Bot ' || g, 1000, 'per_trade', now() - interval '400 days', now()
FROM generate_series(1, 2000) g;
INSERT INTO profitshare_agentwallet (pubkey, encrypted_secret, created_at)
SELECT 'Agent' || lpad(g::text, 39, 'x'), '\\x00'::bytea, now() - interval '400 days' FROM generate_series(1, %(subs)s) g;
-- subscriptions: 500 on the large creator's two bots (1, 2), then 10 per other bot
INSERT INTO profitshare_subscription (subscription_id, bot_id, subscriber_wallet, agent_wallet_id,
  drift_subaccount_id, status, profit_share_bps, policy, pending_policy, cumulative_pnl, high_water_mark,
  dust_carry, created_at)
SELECT 'sub-' || g,
       CASE WHEN g <= 500 THEN 1 + (g %% 2) ELSE 3 + ((g - 501) / 10) END,
       'Subscriber' || lpad(g::text, 34, 'x'), g, 0, 'active', 1000, 'per_trade', '', 0, 0, (g %% 7) * 1000,
       now() - interval '400 days'
FROM generate_series(1, %(subs)s) g;

-- closes and distributions: the first 10 %% belong to the large creator's subscriptions
CREATE TEMP TABLE seed AS
SELECT g,
       CASE WHEN g <= %(large)s THEN 1 + (g %% 500) ELSE 501 + (g %% (%(subs)s - 500)) END AS sub_id,
       (g * 7919) %% 100 AS k,
       1000000 + (g * 104729) %% 99000000 AS pnl,
       now() - ((g * 7919) %% 31536000) * interval '1 second' AS ts
FROM generate_series(1::bigint, %(n)s::bigint) g;

INSERT INTO profitshare_tradeclose (close_id, subscription_id, market_index, realized_pnl, kind, closed_at,
  received_at, body_sha256)
SELECT 'close-' || g, sub_id, 0, pnl, 'full', ts, ts, repeat('0', 64) FROM seed ORDER BY g;

INSERT INTO profitshare_distribution (close_id, subscription_id, creator_id, bot_id, realized_pnl,
  profit_share_bps, policy, share, carry_in, paid, owed, carried, voided, withdrawn, settled, status, attempts,
  created_at, updated_at, split_terms)
SELECT s.g, s.sub_id, b.creator_id, b.id, s.pnl, 1000, 'per_trade', s.pnl / 10, 0,
       CASE WHEN s.k < 94 AND s.k <> 90 THEN s.pnl / 10 ELSE 0 END,
       CASE WHEN s.k = 90 THEN s.pnl / 10 ELSE 0 END,
       CASE WHEN s.k >= 94 THEN s.pnl / 10 ELSE 0 END,
       0, 0, true,
       CASE WHEN s.k = 90 THEN 'owed' WHEN s.k < 94 THEN 'paid' ELSE 'carried' END,
       CASE WHEN s.k BETWEEN 86 AND 93 THEN 2 ELSE 1 END, s.ts, s.ts,
       jsonb_build_object('platform_fee_bps', 150, 'treasury', %(treasury)s::text, 'referral', '[]'::jsonb)
FROM seed s JOIN profitshare_subscription sub ON sub.id = s.sub_id JOIN profitshare_publishedbot b ON b.id = sub.bot_id
ORDER BY s.g;

-- legs: every share split into the creator's and a 1.5 %% platform fee to one treasury (which so
-- holds a leg of every distribution), each leg in its distribution's one state
INSERT INTO profitshare_distributionleg (distribution_id, role, wallet, bps, amount, carry_in, paid, owed, carried,
  voided, created_at)
SELECT d.id, l.role, CASE WHEN l.role = 'creator' THEN c.address ELSE %(treasury)s END, l.bps, l.amount, 0,
       CASE WHEN d.paid > 0 THEN l.amount ELSE 0 END, CASE WHEN d.owed > 0 THEN l.amount ELSE 0 END,
       CASE WHEN d.carried > 0 THEN l.amount ELSE 0 END, 0, d.created_at
FROM profitshare_distribution d JOIN profitshare_creatorwallet c ON c.id = d.creator_id
CROSS JOIN LATERAL (VALUES ('creator', NULL::smallint, d.share - d.share * 150 / 10000),
                           ('platform', 150::smallint, d.share * 150 / 10000)) AS l(role, bps, amount);

-- IOUs: 1 %% of distributions still owe (open within the 7-day TTL, expired after it: both are
-- pending debts), 4 %% had an IOU that a retry paid later
INSERT INTO profitshare_iou (distribution_id, subscription_id, creator_id, amount, paid_amount, reason, status,
  attempts, next_retry_at, claimed_at, last_error, expires_at, created_at, resolved_at, void_reason, voided_by)
SELECT d.id, d.subscription_id, d.creator_id, d.share, d.paid,
       (ARRAY['insufficient_sol','withdraw_short','withdraw_failed','rpc_unavailable'])[1 + (d.id / 100) %% 4],
       CASE WHEN d.status = 'paid' THEN 'paid'
            WHEN d.created_at > now() - interval '7 days' THEN 'open' ELSE 'expired' END,
       1 + d.id %% 5, now() + (d.id %% 3600) * interval '1 second', NULL, '',
       d.created_at + interval '7 days', d.created_at,
       CASE WHEN d.status = 'paid' THEN d.created_at + interval '1 hour' END, '', ''
FROM seed s JOIN profitshare_distribution d ON d.close_id = s.g WHERE s.k BETWEEN 86 AND 90;

INSERT INTO profitshare_payoutattempt (distribution_id, iou_id, agent_wallet_id, amount, signature,
  raw_transaction, blockhash, last_valid_block_height, destination_owner, destination_ata, status, error, slot,
  fee_lamports, created_at, sent_at, resolved_at, path, settles, withdraw_amount, legs)
SELECT d.id, i.id, d.subscription_id, d.paid, left(md5(d.id::text) || md5('s' || d.id) || md5('t' || d.id), 88),
       '\\x00'::bytea, md5(d.id::text), 1000, 'Creator', 'Ata', 'landed', '', 1, 5000, d.created_at, d.created_at,
       d.created_at + interval '2 seconds', 'atomic', true, d.paid, '[]'::jsonb
FROM profitshare_distribution d LEFT JOIN profitshare_iou i ON i.distribution_id = d.id
WHERE d.status = 'paid';

INSERT INTO profitshare_alert (kind, severity, subject, amount, data, created_at, acknowledged_by)
SELECT 'iou_created', 'warning', 'IOU ' || i.id, i.amount, '{}'::jsonb, i.created_at, ''
FROM profitshare_iou i ORDER BY i.id DESC LIMIT 5000;
"""


def seed(n: int) -> None:
    """Fill the benchmark database with ``n`` distributions (and what they hang on)."""
    from django.db import connection

    large = n // 10
    subs = 500 + 10 * 1998
    started = time.perf_counter()
    from profitshare.services import earnings, leg_totals

    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL, {"n": n, "large": large, "subs": subs, "treasury": TREASURY})
    earnings.rebuild()  # the rollups the engine would have kept, from the seeded ledger
    leg_totals.rebuild()  # and the legs' running totals, per creator and per day
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"seeded {n:,} distributions in {time.perf_counter() - started:.0f} s", flush=True)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(
    client, url: str, *, warmup: int, requests: int, headers: dict | None = None
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds (this process: Django, templates, the ORM; not
    PostgreSQL) of ``requests`` GETs of ``url`` after ``warmup`` untimed ones."""
    headers = headers or {}
    wall, cpu = [], []
    for i in range(warmup + requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, secure=True, **headers)  # production serves HTTPS only
        if response.streaming:
            b"".join(response.streaming_content)
        elapsed, elapsed_cpu = (time.perf_counter() - started) * 1000, (time.process_time() - started_cpu) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        if i >= warmup:
            wall.append(elapsed)
            cpu.append(elapsed_cpu)
    return wall, cpu


def main() -> None:
    """Seed if needed, then print p50/p95/max per page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distributions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--only", default="", help="time only the pages whose name contains this text")
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    base = args.admin_url.rsplit("/", 1)[0]
    ensure_database(args.admin_url, BENCH_DB)
    configure(f"{base}/{BENCH_DB}")

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from profitshare.models import (
        IOU,
        CreatorWallet,
        Distribution,
        EarningsDay,
        PublishedBot,
        Subscription,
    )
    from profitshare.selectors import dashboard
    from profitshare.views.common import SESSION_WALLET

    call_command("migrate", verbosity=0)
    if args.reseed or Distribution.objects.count() != args.distributions:
        seed(args.distributions)
    elif not EarningsDay.objects.exists():  # seeded before the rollups existed
        from profitshare.services import earnings

        earnings.rebuild()

    large = CreatorWallet.objects.get(pk=1)
    typical = CreatorWallet.objects.get(pk=500)
    subscriber = Subscription.objects.get(pk=1)
    iou = IOU.objects.order_by("-pk").first()
    staff, _ = get_user_model().objects.get_or_create(username="bench-ops", defaults={"is_staff": True})

    def wallet_client(address: str) -> Client:
        client = Client()
        session = client.session
        session[SESSION_WALLET] = address
        session.save()
        return client

    large_client, typical_client = wallet_client(large.address), wallet_client(typical.address)
    sub_client = wallet_client(subscriber.subscriber_wallet)
    admin = Client()
    admin.force_login(staff)
    cursor = dashboard.distribution_history(large.pk, {})["older"]
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "history-rows"}
    bot = PublishedBot.objects.get(pk=1)

    pages = [
        ("creator dashboard, typical creator (1k distributions)", typical_client, "/creator/", None),
        ("creator dashboard, large creator (100k distributions)", large_client, "/creator/", None),
        ("creator bot page, large creator's bot (50k distributions)", large_client, f"/creator/bots/{bot.bot_id}/", None),
        ("creator history page 2 (htmx fragment), large", large_client, f"/creator/?after={cursor}", htmx),
        ("creator history filtered status=owed, large", large_client, "/creator/?status=owed", htmx),
        ("creator history date range, large", large_client, "/creator/?date_from=2026-01-01&date_to=2026-01-31", htmx),
        ("debts page (all open IOUs)", admin, "/console/", None),
        ("debts page sorted by amount, page 3", admin, "/console/?sort=-remaining_owed&page=3", None),
        ("debts page filtered reason=withdraw_short", admin, "/console/?reason=withdraw_short", None),
        ("IOU detail", admin, f"/console/ious/{iou.pk}/", None),
        ("alerts", admin, "/console/alerts/", None),
        ("subscriber trade history", sub_client, f"/subscriber/{subscriber.subscription_id}/", None),
        ("marketplace snippet (large creator's bot)", Client(), f"/bots/{bot.bot_id}/snippet/", None),
        ("earnings page, large creator (100k legs)", large_client, "/earnings/", None),
        ("earnings page, the treasury (a leg of every share)", wallet_client(TREASURY), "/earnings/", None),
        ("console treasury page (a leg of every share)", admin, "/console/treasury/", None),
    ]
    total = Distribution.objects.count()
    pending = IOU.objects.filter(status__in=("open", "processing", "expired")).count()
    print(f"{total:,} distributions, {IOU.objects.count():,} IOUs ({pending:,} pending debts); "
          f"{args.requests} timed requests per page after {args.warmup} warm-up; server time in ms "
          f"(cpu: this process only); load average {os.getloadavg()[0]:.2f}")
    print(f"{'page':56} {'p50':>6} {'p95':>6} {'max':>6} {'cpu p50':>8}  p95<=50ms")
    worst = 0.0
    for name, client, url, headers in pages:
        if args.only not in name:
            continue
        wall, cpu = measure(client, url, warmup=args.warmup, requests=args.requests, headers=headers)
        p50, p95 = statistics.median(wall), percentile(wall, 0.95)
        worst = max(worst, p95)
        print(f"{name:56} {p50:6.1f} {p95:6.1f} {max(wall):6.1f} {statistics.median(cpu):8.1f}  "
              f"{'yes' if p95 <= TARGET_P95_MS else 'NO'}", flush=True)
    print(f"worst p95: {worst:.1f} ms (target {TARGET_P95_MS:.0f} ms); load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
