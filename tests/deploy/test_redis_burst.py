"""Several machines in one test: a burst of closes reported to a gunicorn web server and paid by
TWO ``manage.py qcluster`` processes on the Redis broker, against PostgreSQL and a local node
(each its own process). Proves from the chain that no close was paid twice and that every close
is paid, owed or carried to the base unit."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
import redis
from solders.keypair import Keypair

from profitshare.models import (
    IOU,
    AttemptStatus,
    Distribution,
    IouStatus,
    PayoutAttempt,
    TradeClose,
)
from tests.deploy.chain import Rpc, post
from tests.deploy.processes import INTAKE_SECRET, ProductProcesses

REDIS_URL = "redis://127.0.0.1:6379/11"  # this test's own Redis database, flushed before and after
SUBSCRIPTIONS = 30
CLOSES_PER_SUBSCRIPTION = 2
LOW_SOL = {7, 19}  # agents that cannot pay: their closes must end owed (insufficient_sol)
USDC = 1_000_000
BPS = 1000
UNRESOLVED = ("pending", "processing")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deployment(tmp_path):
    """Local node, gunicorn and two qclusters on Redis db 11 and the test database."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    procs = ProductProcesses(tmp_path, REDIS_URL=REDIS_URL, QV_Q_WORKERS="2")
    try:
        node_url = procs.start_node(slot_ms=100)
        procs.start_qcluster("qcluster-a")
        procs.start_qcluster("qcluster-b")
        web_url = procs.start_web(workers=2)
        yield procs, node_url, web_url
    finally:
        procs.stop()
        client.flushdb()


def _pnl(rng: random.Random, index: int, k: int) -> int:
    if index % 10 == 3 and k == 0:
        return 50_000  # a 0.005 USDC share: dust, carried
    if index % 10 == 5 and k == 1:
        return -rng.randint(1, 20) * USDC  # a loser: nothing owed
    return rng.randint(2 * USDC, 40 * USDC)


def _unresolved(procs: ProductProcesses) -> str:
    """What a stuck burst left: the unresolved distributions with their attempts, and the
    workers' error lines."""
    lines = [
        f"distribution {d.pk} {d.status}: attempts {list(d.attempts_log.values_list('path', 'status', 'error'))}"
        for d in Distribution.objects.filter(status__in=UNRESOLVED)
    ]
    for name in ("qcluster-a", "qcluster-b"):
        lines += [f"{name}: {line}" for line in procs.log(name).splitlines() if "ERROR" in line or "Error" in line]
    return "\n".join(lines)


def test_burst_on_two_qclusters_pays_each_close_once(deployment):
    procs, node_url, web_url = deployment
    rpc = Rpc(node_url)
    http = httpx.Client(base_url=f"{web_url}/api/v1", timeout=30)
    creator = str(Keypair().pubkey())
    assert post(http, INTAKE_SECRET, "/bots", {
        "bot_id": "burst-bot", "creator_wallet": creator, "name": "Burst", "profit_share_bps": BPS,
        "policy": "per_trade",
    }).status_code == 201
    agents = {}
    for i in range(SUBSCRIPTIONS):
        answer = post(http, INTAKE_SECRET, "/subscriptions", {
            "subscription_id": f"burst-{i}", "bot_id": "burst-bot",
            "subscriber_wallet": str(Keypair().pubkey()), "drift_subaccount_id": 0,
        })
        assert answer.status_code == 201, answer.text
        agents[i] = answer.json()["agent_wallet"]
        rpc.call("requestAirdrop", agents[i], 1_000_000 if i in LOW_SOL else 100_000_000)
        rpc.call("localnet_driftDeposit", agents[i], 0, 1_000 * USDC)

    rng = random.Random(7)
    closes = [
        (f"burst-{i}-{k}", i, _pnl(rng, i, k), rng.choice(["full", "partial", "flip"]))
        for k in range(CLOSES_PER_SUBSCRIPTION) for i in range(SUBSCRIPTIONS)
    ]
    for _, i, pnl, _ in closes:
        rpc.call("localnet_driftRealizePnl", agents[i], 0, pnl)

    def report(close) -> int:
        close_id, i, pnl, kind = close
        with httpx.Client(base_url=f"{web_url}/api/v1", timeout=30) as client:
            return post(client, INTAKE_SECRET, "/trade-closes", {
                "close_id": close_id, "subscription_id": f"burst-{i}", "market_index": 0,
                "realized_pnl": pnl, "kind": kind, "closed_at": datetime.now(UTC).isoformat(),
            }).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(report, closes))
    assert statuses == [202] * len(closes)

    deadline = time.monotonic() + 45
    while Distribution.objects.filter(status__in=UNRESOLVED).exists():
        assert time.monotonic() < deadline, f"closes still unprocessed after 45 s:\n{_unresolved(procs)}"
        time.sleep(0.5)
    elapsed = time.monotonic() - started

    # every close reported once, every owing close has one distribution that balances
    assert TradeClose.objects.count() == len(closes)
    dists = list(Distribution.objects.select_related("close", "subscription"))
    owing = [c for c in closes if c[2] > 0]
    assert len(dists) == len(owing)
    for d in dists:
        assert d.share == d.close.realized_pnl * BPS // 10_000
        assert d.paid + d.owed + d.carried + d.voided == d.share + d.carry_in, d.pk
        if d.owed:
            iou = IOU.objects.get(distribution=d, status__in=[IouStatus.OPEN, IouStatus.EXPIRED])
            assert iou.remaining == d.owed
    low_sol = [d for d in dists if int(d.subscription.subscription_id.split("-")[1]) in LOW_SOL]
    assert low_sol and all(d.paid == 0 and d.owed + d.carried == d.share + d.carry_in for d in low_sol)
    assert sum(d.owed for d in low_sol) > 0
    assert any(d.status == "carried" for d in dists)
    # total conservation: what was due is paid, owed, or still carried on a subscription
    carried_now = sum({d.subscription_id: d.subscription.dust_carry for d in dists}.values())
    assert sum(d.paid + d.owed for d in dists) + carried_now == sum(d.share for d in dists)

    # the chain: each transfer into the creator's token account is one landed attempt of one
    # distribution, for its recorded amount; nothing else arrived; no distribution got more
    landed = {a.signature: a for a in PayoutAttempt.objects.filter(status=AttemptStatus.LANDED)}
    deposits = rpc.deposits(creator)
    assert set(deposits) == set(landed), "transfers on chain and landed attempts differ"
    by_dist: dict[int, int] = {}
    for signature, amount in deposits.items():
        assert amount == landed[signature].amount
        by_dist[landed[signature].distribution_id] = by_dist.get(landed[signature].distribution_id, 0) + amount
    for d in dists:
        assert by_dist.get(d.pk, 0) == d.paid, f"distribution {d.pk}: chain {by_dist.get(d.pk, 0)} != paid {d.paid}"
    assert rpc.usdc_balance(creator) == sum(d.paid for d in dists) == sum(deposits.values()) > 0

    # both clusters took tasks from the one Redis queue
    for name in ("qcluster-a", "qcluster-b"):
        assert "Processed 'profitshare.tasks.process_distribution_task'" in procs.log(name), name
    for name in ("qcluster-a", "qcluster-b", "web"):
        assert "database is locked" not in procs.log(name)
        assert "deadlock detected" not in procs.log(name), name
    print(f"\n{len(closes)} closes ({len(dists)} owing) processed by 2 qclusters in {elapsed:.1f} s")
