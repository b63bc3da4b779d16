"""Fault soak (the reliability bar): many closes across subscriptions and creators
while the local node drops sends, loses responses, answers 429/503 and delivers partial
withdraws, with one worker process SIGKILLed mid-payout and restarted.

The closes arrive in waves; every ``storm_every``-th wave runs under the full fault mix (the
others are calm). With a replica (a second URL in front of the same node, the node's server named
``replica``: every process's pool lists both), the calm wave halfway between two storms is a
*lagging-replica* wave: the primary answers ``getSignatureStatuses`` with HTTP 503/429 (a
provider rate-limiting heavy methods) and the replica answers everything ``LAG_SLOTS`` slots
behind, so every status is read from behind while the primary's height runs ahead (a payout
decided "expired" there would be re-signed). A second process (the *worker*) drains the same
queue as this one — one
is SIGKILLed as soon as it has recorded a payout attempt (between "recorded" and "confirmed"),
then a new worker is started and runs to the end. Both processes run the engine's own entry
points: ``process_pending``, the IOU retry sweep (``claim_due_ious`` + ``retry_iou``) and the
stale-work resolver. When the last wave is paid the faults stop, the worker is told to stop
and the resolver and sweeps run until the system is quiescent (nothing pending or processing,
no attempt undecided, no IOU open). Then, read from the chain and the database:

* **double payments** (must be 0): every payout attempt's status is read from the chain
  (``getSignatureStatuses``); a distribution whose chain-landed payouts exceed its share +
  carry-in, or differ from what the ledger says it paid, or an attempt landed on chain that the
  ledger does not count as landed;
* **balance** (must be 0 off): for every close ``paid + owed + carried + voided = share +
  carry_in``, to the base unit (no voids happen here, so this is paid + owed + carried), and
  the dust carried out equals the dust folded back in plus what the subscriptions still carry;
* **creators** (must be 0 off): each creator's USDC on chain equals the ledger's total paid;
* **reconciliation** (must be all matched): every landed payout signature read back with
  ``getTransaction`` (amount, mint, destination) and every agent wallet scanned for payouts the
  ledger lacks;
* **stuck** (must be 0): IOUs left ``processing``, distributions ``pending``/``processing``,
  attempts ``prepared``/``sent``;
* **landed per chain**: attempts the ledger had recorded expired or failed that were later
  applied as landed (``landed_per_chain`` alerts; 0 when no decision was wrong).

It prints those figures and the elapsed time. ``run_soak`` is also run small by the test suite
(``tests/ops/test_soak.py``).

Usage: ``.venv/bin/python benchmarks/soak.py [--closes 10000 --subscriptions 200 --creators 10]``
(PostgreSQL at 127.0.0.1:5432; database ``qv_soak``, wiped; no Redis: the processes call the
engine directly; it starts its own local node as a separate process on a free port, with its
replica on another).

Speed: the node's clock is manual, so a dropped send never confirms by itself; the soak's
gateways wait ``--confirm-timeout`` (0.25 s) for a send instead of the production 60 s and leave
the undecided attempt to the resolver, which decides it from the chain once the soak has moved
the clock 151 slots on (its blockhash expired unlanded: only then is a new transaction signed).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
STORM = {"dropRate": 0.1, "dropPrograms": [TOKEN_PROGRAM], "loseResponseRate": 0.05,
         "httpErrorRate": 0.05, "partialWithdrawRatio": 0.6}
CONFIRM_TIMEOUT = 0.25  # seconds a soak process waits for a send (see the module docstring)
SLOTS_PAST_EXPIRY = 151  # a blockhash is valid for 150 blocks
# The lagging-replica wave: the replica is more than a blockhash's lifetime behind, so after one
# drain round the primary's height is past a payout's last valid block height while the replica
# (the only endpoint answering statuses) has not seen it land yet.
LAG_SLOTS = 200
LAGGING = {"endpoints": {"primary": {"httpErrorRate": 1.0, "httpErrorMethods": ["getSignatureStatuses"]},
                         "replica": {"lagSlots": LAG_SLOTS}}}
SLOT_PROBE_SECONDS = 1  # the soak's pools read their endpoints' slots this often (production: 10)
WORKER_SCRIPT = """
import django
django.setup()
from benchmarks.soak import worker_loop
worker_loop()
"""


@dataclass
class SoakResult:
    """The figures of one soak run (amounts in USDC base units)."""

    closes: int
    subscriptions: int
    creators: int
    seconds: float
    paid: int = 0
    payouts: int = 0
    attempts: int = 0
    double_payments: int = 0
    chain_landed_unrecorded: int = 0
    unbalanced: int = 0
    dust_off: int = 0
    creators_off: int = 0
    reconciliation_checked: int = 0
    reconciliation_matched: int = 0
    reconciliation_mismatches: int = 0
    reconciliation_unrecorded: int = 0
    reconciliation_error: str = ""
    stuck_ious: int = 0
    stuck_distributions: int = 0
    stuck_attempts: int = 0
    still_owed: int = 0
    carried: int = 0
    killed_worker: bool = False
    worker_restarted: bool = False
    rounds: int = 0
    storm_waves: int = 0
    lag_waves: int = 0
    landed_per_chain: int = 0
    phase_seconds: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    ious_by_reason: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every check holds (nothing double paid, unbalanced, unreconciled or stuck, and
        no payout decided unlanded that the chain later showed landed)."""
        return not (self.double_payments or self.chain_landed_unrecorded or self.landed_per_chain
                    or self.unbalanced or self.dust_off
                    or self.creators_off or self.reconciliation_mismatches or self.reconciliation_unrecorded
                    or self.reconciliation_error or self.reconciliation_matched != self.payouts
                    or self.stuck_ious or self.stuck_distributions or self.stuck_attempts or self.still_owed)

    def lines(self) -> list[str]:
        """The report, one figure per line."""
        return [
            f"closes: {self.closes} across {self.subscriptions} subscriptions and {self.creators} creators "
            f"in {self.seconds:.1f} s ({self.storm_waves} storm waves, {self.lag_waves} lagging-replica waves, "
            f"{self.rounds} drain rounds; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.phase_seconds.items()) + ")",
            f"paid: {self.paid} USDC base units in {self.payouts} landed payouts ({self.attempts} attempts signed); "
            f"carried as dust: {self.carried}; still owed: {self.still_owed}",
            f"double payments (chain statuses vs ledger): {self.double_payments}; "
            f"landed on chain but not in the ledger: {self.chain_landed_unrecorded}",
            f"closes where paid + owed + carried + voided != share + carry_in: {self.unbalanced}; dust off: {self.dust_off}",
            f"creators whose chain balance differs from the ledger: {self.creators_off}",
            f"reconciliation: {self.reconciliation_matched}/{self.reconciliation_checked} paid signatures matched, "
            f"{self.reconciliation_mismatches} mismatched, {self.reconciliation_unrecorded} unrecorded"
            + (f", error {self.reconciliation_error}" if self.reconciliation_error else ""),
            f"stuck at the end: {self.stuck_ious} IOUs processing, {self.stuck_distributions} distributions "
            f"pending/processing, {self.stuck_attempts} attempts undecided",
            f"worker SIGKILLed mid-payout: {self.killed_worker}; restarted: {self.worker_restarted}",
            f"attempts recorded expired or failed, later found landed (landed per chain): {self.landed_per_chain}",
            f"IOUs opened, by reason: {self.ious_by_reason}",
            f"errors raised by engine calls (retried by the next round): {self.errors}",
            "RESULT: " + ("OK" if self.ok else "FAILED"),
        ]


def _rpc(client, url: str, method: str, *params):
    body = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


def _rpc_batch(client, url: str, calls: list[tuple]) -> list:
    """JSON-RPC batches of 200 ``(method, *params)`` calls; raises on any error."""
    out = []
    for start in range(0, len(calls), 200):
        chunk = calls[start:start + 200]
        body = client.post(url, json=[{"jsonrpc": "2.0", "id": i, "method": c[0], "params": list(c[1:])}
                                      for i, c in enumerate(chunk)]).json()
        for answer in sorted(body, key=lambda a: a["id"]):
            if "error" in answer:
                raise RuntimeError(f"{chunk[answer['id']][0]}: {answer['error']}")
            out.append(answer["result"])
    return out


def _later(**delta) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def drain(gateway, *, errors: dict, lock_timeout: float = 1.0) -> int:
    """One pass of what the django-q2 workers and schedules do, with every backoff treated as
    due: pay pending distributions in batches, finish stale processing work from the chain
    (resolver), retry due IOUs. Returns how many units of work it touched; exceptions are
    counted in ``errors`` by type (the next pass picks the work up again)."""
    from profitshare.services import engine, ious, resolver
    from profitshare.services.locks import LockTimeout

    def guarded(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LockTimeout:
            errors["LockTimeout (busy wallet)"] = errors.get("LockTimeout (busy wallet)", 0) + 1
        except Exception as exc:  # noqa: BLE001 - counted and shown; the next pass retries
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        return None

    touched = 0
    while batch := guarded(engine.process_pending, gateway=gateway):
        touched += len(batch)
    # IOU claims stamp ``claimed_at`` with the ``now`` they are given; the resolver's clock runs
    # ahead of it so a claim whose retry raised is stale at the next pass
    counts = guarded(resolver.resolve_stale, gateway=gateway, now=_later(days=31), limit=1000) or {}
    touched += counts.get("distributions", 0) + counts.get("ious", 0)
    for iou_id in guarded(ious.claim_due_ious, now=_later(days=30), limit=200) or []:
        guarded(engine.retry_iou, iou_id, gateway=gateway, lock_timeout=lock_timeout)
        touched += 1
    return touched


def tune_gateway(gateway, confirm_timeout: float = CONFIRM_TIMEOUT):
    """The soak's timing on a gateway: ``confirm_timeout`` seconds per send (see the module
    docstring) and a short RPC backoff (20 ms doubling to 200 ms instead of 0.25 s to 4 s; a
    429/503 of the local node is a coin flip, not a loaded server). Returns the gateway."""
    gateway.confirm_timeout = confirm_timeout
    gateway.pool.backoff_initial, gateway.pool.backoff_max = 0.02, 0.2
    return gateway


def worker_loop() -> None:
    """The worker process: ``drain`` until the file named by ``QV_SOAK_STOP_FILE`` exists."""
    from profitshare.services import engine

    gateway = tune_gateway(engine.default_gateway(), float(os.environ.get("QV_SOAK_CONFIRM_TIMEOUT", CONFIRM_TIMEOUT)))
    stop = Path(os.environ["QV_SOAK_STOP_FILE"])
    errors: dict = {}
    while not stop.exists():
        if not drain(gateway, errors=errors):
            time.sleep(0.1)


def _quiet() -> bool:
    from profitshare.models import (
        IOU,
        AttemptStatus,
        Distribution,
        DistributionStatus,
        IouStatus,
        PayoutAttempt,
    )

    return not (
        Distribution.objects.filter(status__in=(DistributionStatus.PENDING, DistributionStatus.PROCESSING)).exists()
        or IOU.objects.filter(status__in=IouStatus.ACTIVE).exists()
        or PayoutAttempt.objects.filter(status__in=(AttemptStatus.PREPARED, AttemptStatus.SENT)).exists()
    )


def _start_worker(env: dict, stop_file: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], cwd=ROOT, start_new_session=True,
                            env={**env, "QV_SOAK_STOP_FILE": str(stop_file), "PYTHONPATH": str(ROOT)})


def _kill_mid_payout(env: dict, stop_file: Path, timeout: float = 120.0) -> bool:
    """Start a worker, SIGKILL its process group as soon as it has recorded a payout attempt
    that is not decided yet (recorded, maybe sent, not confirmed). True if it was killed."""
    from profitshare.models import AttemptStatus, PayoutAttempt

    before = PayoutAttempt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    worker = _start_worker(env, stop_file)
    deadline = time.monotonic() + timeout
    killed = False
    while time.monotonic() < deadline and worker.poll() is None:
        if PayoutAttempt.objects.filter(pk__gt=before, status__in=(AttemptStatus.PREPARED, AttemptStatus.SENT)).exists():
            os.killpg(worker.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    if worker.poll() is None and not killed:
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    return killed


def run_soak(rpc_url: str, *, closes: int, subscriptions: int, creators: int, seed: int = 1,
             worker_env: dict | None = None, gateway=None, waves: int = 10, storm_every: int = 4,
             replica_url: str | None = None, confirm_timeout: float = CONFIRM_TIMEOUT, max_rounds: int = 200,
             work_dir: Path | None = None, log=None) -> SoakResult:
    """Run the soak on the configured database against the node at ``rpc_url`` (settings
    must point the engine's gateway there) and return its figures (see the module docstring).

    ``closes`` are spread round-robin over ``subscriptions`` of ``creators`` bots (rates 2.5–10 %,
    a few closes below the dust threshold); they arrive in ``waves``, every ``storm_every``-th
    (from the first) under the fault mix ``STORM``. ``replica_url``: the node's replica (its
    server named ``replica``), listed after ``rpc_url`` by every process's pool; given, each calm
    wave ``storm_every // 2`` after a storm runs ``LAGGING``. ``worker_env``: environment of the
    second process (the database and node this one uses; None: no worker, nothing killed);
    ``gateway``: this process's chain gateway (default: the engine's); its confirm timeout is set
    to ``confirm_timeout`` seconds. ``max_rounds``: drain rounds allowed after the last wave
    before giving up (the figures then show what is stuck). ``log``: a callable for progress
    lines. Raises ``RuntimeError`` when the node refuses a world-building call."""
    import httpx
    from django.db.models import Count, F, Sum
    from solders.keypair import Keypair
    from solders.pubkey import Pubkey
    from spl.token.instructions import get_associated_token_address

    from profitshare.chain import keys
    from profitshare.models import (
        IOU,
        AgentWallet,
        Alert,
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
    from profitshare.services import engine, reconciliation
    from profitshare.services.intake import CloseReport, record_close

    log = log or (lambda line: None)
    rng = random.Random(seed)
    gateway = tune_gateway(gateway or engine.default_gateway(), confirm_timeout)
    client = httpx.Client(timeout=60)
    started = time.monotonic()
    phase_started = started
    result = SoakResult(closes=closes, subscriptions=subscriptions, creators=creators, seconds=0.0)
    errors: dict[str, int] = {}
    result.errors = errors

    def phase(name: str) -> None:
        nonlocal phase_started
        now = time.monotonic()
        result.phase_seconds[name] = result.phase_seconds.get(name, 0.0) + now - phase_started
        phase_started = now

    # --- the world: creators, bots, subscriptions with funded agent wallets ----------------------
    creator_rows = [CreatorWallet.objects.create(address=str(Keypair().pubkey())) for _ in range(creators)]
    bots = [PublishedBot.objects.create(bot_id=f"soak-bot-{seed}-{i}", creator=c, name=f"Soak {i}",
                                        profit_share_bps=(250, 500, 750, 1_000)[i % 4], policy=Policy.PER_TRADE)
            for i, c in enumerate(creator_rows)]
    subs = []
    for i in range(subscriptions):
        kp = Keypair()
        wallet = AgentWallet.objects.create(pubkey=str(kp.pubkey()), encrypted_secret=keys.encrypt_keypair(kp))
        bot = bots[i % len(bots)]
        subs.append(Subscription.objects.create(
            subscription_id=f"soak-{seed}-{i}", bot=bot, subscriber_wallet=str(Keypair().pubkey()), agent_wallet=wallet,
            drift_subaccount_id=0, profit_share_bps=bot.profit_share_bps, policy=bot.policy))
    per_sub = -(-closes // max(1, subscriptions))
    _rpc_batch(client, rpc_url, [("requestAirdrop", s.agent_wallet.pubkey, 1_000_000_000) for s in subs]
               + [("localnet_driftDeposit", s.agent_wallet.pubkey, 0, 100_000_000 * per_sub) for s in subs]
               + [("localnet_fundUsdc", c.address, 1) for c in creator_rows])  # creator ATAs exist; 1 unit
    phase("setup")

    # --- waves of closes ---------------------------------------------------------------------------
    stop_file = (work_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"qv-soak-stop-{os.getpid()}-{seed}"
    stop_file.unlink(missing_ok=True)
    worker = None
    per_wave = -(-closes // waves)
    n = 0
    for wave in range(waves):
        batch = []
        for _ in range(min(per_wave, closes - n)):
            sub = subs[n % len(subs)]
            pnl = rng.randint(10_000, 90_000) if rng.random() < 0.05 else rng.randint(1_000_000, 80_000_000)
            batch.append((f"soak-{seed}-{n}", sub, pnl))
            n += 1
        _rpc_batch(client, rpc_url, [("localnet_driftRealizePnl", s.agent_wallet.pubkey, 0, pnl) for _, s, pnl in batch])
        for close_id, sub, pnl in batch:
            record_close(CloseReport(close_id=close_id, subscription_id=sub.subscription_id, market_index=0,
                                     realized_pnl=pnl, kind="full", closed_at=datetime.now(UTC)))
        phase("intake")
        storm = wave % storm_every == 0
        lagging = replica_url is not None and not storm and wave % storm_every == storm_every // 2
        result.storm_waves += storm
        result.lag_waves += lagging
        faults = STORM if storm else LAGGING if lagging else {}
        _rpc(client, rpc_url, "localnet_setFaults", {**faults, "seed": seed * 1000 + wave} if faults else {})
        if wave == 0 and worker_env is not None:
            result.killed_worker = _kill_mid_payout(worker_env, stop_file)
            worker = _start_worker(worker_env, stop_file)  # restarted: drains alongside until the end
            result.worker_restarted = True
        while Distribution.objects.filter(status=DistributionStatus.PENDING).exists():
            drain(gateway, errors=errors)
            _rpc(client, rpc_url, "localnet_advanceSlots", SLOTS_PAST_EXPIRY)
            result.rounds += 1
        kind = "storm" if storm else "lagging replica" if lagging else "calm"
        log(f"wave {wave + 1}/{waves} ({kind}) done at {time.monotonic() - started:.0f} s")
        phase(f"{kind} waves")

    # --- the outage ends: everything must settle -----------------------------------------------------
    _rpc(client, rpc_url, "localnet_setFaults", {})
    for _ in range(max_rounds):
        if _quiet():
            break
        drain(gateway, errors=errors)
        _rpc(client, rpc_url, "localnet_advanceSlots", SLOTS_PAST_EXPIRY)
        result.rounds += 1
    if worker is not None:
        stop_file.touch()
        try:
            worker.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        stop_file.unlink(missing_ok=True)
    for _ in range(max_rounds):  # whatever the worker left: resolver and sweeps until quiescent
        if _quiet():
            break
        drain(gateway, errors=errors)
        _rpc(client, rpc_url, "localnet_advanceSlots", SLOTS_PAST_EXPIRY)
        result.rounds += 1
    phase("settling")
    log(f"quiescent={_quiet()} at {time.monotonic() - started:.0f} s; checking")

    # --- checks, from the chain and the database -----------------------------------------------------
    attempts = list(PayoutAttempt.objects.values_list("pk", "signature", "distribution_id", "amount", "status"))
    result.attempts = len(attempts)
    statuses = gateway.statuses([a[1] for a in attempts])
    chain_paid: dict[int, int] = {}
    for _, signature, dist_id, amount, status in attempts:
        if statuses[signature].state == "landed":
            chain_paid[dist_id] = chain_paid.get(dist_id, 0) + amount
            result.payouts += 1
            if status != AttemptStatus.LANDED:
                result.chain_landed_unrecorded += 1
    for dist in Distribution.objects.all().iterator():
        on_chain = chain_paid.get(dist.pk, 0)
        if on_chain != dist.paid or on_chain > dist.share + dist.carry_in:
            result.double_payments += 1
        if dist.paid + dist.owed + dist.carried + dist.voided != dist.share + dist.carry_in:
            result.unbalanced += 1
    totals = Distribution.objects.aggregate(carried=Sum("carried"), carry_in=Sum("carry_in"), paid=Sum("paid"))
    still_carrying = Subscription.objects.aggregate(t=Sum("dust_carry"))["t"] or 0
    result.carried = totals["carried"] or 0
    result.dust_off = int(result.carried != (totals["carry_in"] or 0) + still_carrying)
    result.paid = totals["paid"] or 0
    usdc = Pubkey.from_string(str(gateway.usdc_mint))
    for c in creator_rows:
        ata = get_associated_token_address(Pubkey.from_string(c.address), usdc)
        on_chain = int(_rpc(client, rpc_url, "getTokenAccountBalance", str(ata))["value"]["amount"]) - 1
        ledger = Distribution.objects.filter(creator=c).aggregate(t=Sum("paid"))["t"] or 0
        result.creators_off += on_chain != ledger
    report = reconciliation.reconcile(gateway=gateway)
    result.reconciliation_checked, result.reconciliation_matched = report.checked, report.matched
    result.reconciliation_mismatches, result.reconciliation_unrecorded = report.mismatched, report.unrecorded
    result.reconciliation_error = report.error
    result.stuck_ious = IOU.objects.filter(status=IouStatus.PROCESSING).count()
    result.stuck_distributions = Distribution.objects.filter(
        status__in=(DistributionStatus.PENDING, DistributionStatus.PROCESSING)).count()
    result.stuck_attempts = PayoutAttempt.objects.filter(status__in=(AttemptStatus.PREPARED, AttemptStatus.SENT)).count()
    result.still_owed = IOU.objects.filter(status__in=IouStatus.ACTIVE).aggregate(
        t=Sum(F("amount") - F("paid_amount")))["t"] or 0
    result.ious_by_reason = dict(IOU.objects.values_list("reason").annotate(n=Count("id")).order_by("reason"))
    result.landed_per_chain = Alert.objects.filter(kind="landed_per_chain").count()
    phase("checks")
    client.close()
    result.seconds = time.monotonic() - started
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(env: dict) -> tuple[subprocess.Popen, str, str]:
    """The local node as its own process (manual clock), so it does not share a GIL with the
    soak's engine, serving its replica on a second port; returns it and both URLs once they
    answer."""
    import httpx

    port, replica_port = _free_port(), _free_port()
    node = subprocess.Popen(
        [sys.executable, "manage.py", "localnet", "--port", str(port), "--replica-port", str(replica_port),
         "--slot-ms", "0", "--pnl-pool", str(10**9 * 10**6)],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    urls = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{replica_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if all(httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"}, timeout=2).json()["result"] == "ok"
                   for url in urls):
                return node, *urls
        except (httpx.HTTPError, KeyError, ValueError):
            time.sleep(0.2)
    os.killpg(node.pid, signal.SIGKILL)
    raise RuntimeError("the local node did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--closes", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=200)
    parser.add_argument("--creators", type=int, default=10)
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--storm-every", type=int, default=4)
    parser.add_argument("--confirm-timeout", type=float, default=CONFIRM_TIMEOUT)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default="qv_soak")
    args = parser.parse_args()
    import psycopg
    from cryptography.fernet import Fernet

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
        "QV_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "QV_LOG_LEVEL": "ERROR", "DJANGO_SETTINGS_MODULE": "quantumvault.settings",
        "QV_SOAK_CONFIRM_TIMEOUT": str(args.confirm_timeout),
        "QV_DEBUG": os.environ.get("QV_DEBUG", "1"),  # development settings (DEBUG is off by default)
    }
    env.pop("REDIS_URL", None)
    node, url, replica = _start_node(env)
    env["SOLANA_RPC_URLS"] = f"{url},{replica}"
    env["QV_RPC_SLOT_PROBE_SECONDS"] = str(SLOT_PROBE_SECONDS)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        from profitshare.services.engine import default_gateway

        result = run_soak(url, closes=args.closes, subscriptions=args.subscriptions, creators=args.creators,
                          seed=args.seed, worker_env=env, gateway=default_gateway(), waves=args.waves,
                          storm_every=args.storm_every, replica_url=replica, confirm_timeout=args.confirm_timeout,
                          log=lambda line: print(line, flush=True))
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait()
    print("\n".join(result.lines()), flush=True)
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
