"""Running the demo market: build (or resume) the world, stage the hard cases, then keep
closing positions until stopped (or, with ``once``, one round and wait for its payouts)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from profitshare.demo import cases, splits, world
from profitshare.demo.clients import ApiError, IntakeClient, NodeClient, NodeError
from profitshare.demo.stage import UNRESOLVED, Stage, StageTimeout
from profitshare.demo.stream import report, traded_close
from profitshare.demo.trading import DemoTrader
from profitshare.models import Subscription, SubscriptionStatus
from profitshare.money import USDC, format_bps, format_usdc

logger = logging.getLogger(__name__)

PNL_POOL_FLOOR = 100_000 * USDC  # top the Drift perp markets' PnL pools back up below this
PNL_POOL_REFILL = 1_000_000 * USDC
STATUS_EVERY_SECONDS = 30.0


@dataclass
class Options:
    """``seed``; ``subscribers`` in the stream; ``rate`` closes per second (> 0); ``once``:
    build, stage, one round, wait for it, return; ``timeout``: seconds allowed to one wait;
    ``platform_fee_bps`` and ``treasury``: the platform fee in force (``QV_PLATFORM_FEE_BPS``,
    basis points) and the wallet it pays (``QV_PLATFORM_TREASURY``; None without a fee)."""

    seed: int = 1
    subscribers: int = 36
    rate: float = 1.0
    once: bool = False
    timeout: float = 60.0
    round_size: int = 12
    platform_fee_bps: int = 0
    treasury: str | None = None


@dataclass
class Market:
    """The demo market on an API (``api``) and a node (``node``). ``say`` prints a line;
    ``stopping()`` tells it to stop (Ctrl-C / SIGTERM)."""

    api: IntakeClient
    node: NodeClient
    options: Options
    say: Callable[[str], None]
    stopping: Callable[[], bool]
    reported: int = 0
    failed_cases: list[str] = field(default_factory=list)

    def run(self) -> None:
        """Build, stage, trade. Returns when stopped, or after one round with ``once``. Raises
        ``ApiError`` / ``NodeError`` / ``StageTimeout`` only with ``once`` (a running market
        logs them and keeps going)."""
        opts = self.options
        self.world = world.plan(opts.seed, opts.subscribers, cases.staged_subscriptions())
        self.trader = DemoTrader(self.node, opts.seed)
        self.trader.prepare()
        counts = world.build(self.world, self.api, self.node)
        for sub in self.world.stream():
            self.trader.delegate_to_platform(sub.agent_wallet)
        self.say(
            f"demo world {opts.seed}: {len(self.world.bot_creator)} bots of {len(self.world.creators)} creators, "
            f"{len(self.world.subscriptions)} subscriptions (new: {counts['bots']} bots, "
            f"{counts['subscriptions']} subscriptions, {counts['funded']} agent wallets funded)"
        )
        self.link_referrals()
        self.stage_cases()
        # one round (``--once``: tests, a look at the product) replays the same closes for the
        # same seed; the endless stream differs from run to run
        rng = random.Random(opts.seed * 7919 + (0 if opts.once else int(time.time())))
        if opts.once:
            closes = [self.report_one(rng) for _ in range(opts.round_size)]
            self.wait_round([c for c in closes if c])
            if self.failed_cases:
                raise StageTimeout(f"staged cases not completed: {self.failed_cases}")
            return
        self.trade(rng)

    def link_referrals(self) -> None:
        """Record the demo's referral chain through the API and open the referrers' and the
        treasury's USDC token accounts (``splits``), before any share is split; say what."""
        seed = self.options.seed
        linked = splits.link_referrals(seed, self.api, self.say)
        opened = splits.open_accounts(seed, self.node, self.trader.delegate, self.options.treasury)
        chains = ", ".join(f"{r} referred {w}" for w, r in splits.REFERRALS)
        fee = (f"platform fee {format_bps(self.options.platform_fee_bps)} to treasury {self.options.treasury[:8]}…"
               if self.options.treasury else "no platform fee (QV_PLATFORM_FEE_BPS is 0)")
        self.say(
            f"splits: {chains} (new: {linked} links, {opened} USDC accounts opened; "
            f"{', '.join(splits.NO_ACCOUNT)} has none: its legs are carried); {fee}"
        )

    def stage_cases(self) -> None:
        """Run every staged case in order; a case that fails is logged and retried next start
        (with ``once``: its name is kept in ``failed_cases``)."""
        stage = Stage(self.api, self.node, self.world, self.say, self.stopping, self.options.timeout)
        for case in cases.CASES:
            if self.stopping():
                return
            try:
                done = case.run(stage)
            except (StageTimeout, ApiError, NodeError) as exc:
                self.say(f"[{case.name}] not completed: {exc}")
                done = False
            if not done:
                self.failed_cases.append(case.name)

    def tradable(self) -> list[world.DemoSubscription]:
        """Stream subscriptions still copying trades (a delinquent one gets no new entries)."""
        subs = self.world.stream()
        blocked = set(Subscription.objects.filter(
            subscription_id__in=[s.subscription_id for s in subs]
        ).exclude(status=SubscriptionStatus.ACTIVE).values_list("subscription_id", flat=True))
        return [s for s in subs if s.subscription_id not in blocked]

    def report_one(self, rng: random.Random, subs: list | None = None) -> str | None:
        """Report one random close; returns its id (None when nothing can trade)."""
        subs = subs if subs is not None else self.tradable()
        if not subs:
            return None
        close = traded_close(rng, self.options.seed, rng.choice(subs), self.trader)
        report(close, self.api, self.node)
        self.reported += 1
        return close.close_id

    def wait_round(self, close_ids: list[str]) -> None:
        """Wait until the engine processed every close of ``close_ids`` (``timeout`` s)."""
        deadline = time.monotonic() + self.options.timeout
        pending = list(close_ids)
        while pending and time.monotonic() < deadline and not self.stopping():
            pending = [c for c in pending if self.api.get(f"/trade-closes/{c}")["status"] in UNRESOLVED]
            if pending:
                time.sleep(0.5)
        if pending:
            raise StageTimeout(f"{len(pending)} closes still unprocessed after {self.options.timeout:.0f} s")
        self.say(f"round of {len(close_ids)} closes processed")

    def trade(self, rng: random.Random) -> None:
        """Report closes at ``rate`` per second until stopped; a status line every 30 s."""
        interval = 1.0 / self.options.rate
        next_status = time.monotonic() + STATUS_EVERY_SECONDS
        subs, subs_at = self.tradable(), time.monotonic()
        while not self.stopping():
            started = time.monotonic()
            try:
                if started - subs_at > 10:
                    subs, subs_at = self.tradable(), started
                self.report_one(rng, subs)
                if started >= next_status:
                    next_status = started + STATUS_EVERY_SECONDS
                    self.housekeeping()
            except (ApiError, NodeError, httpx.HTTPError) as exc:
                self.say(f"close not reported ({exc}); retrying in 2 s")
                time.sleep(2)
                continue
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        self.say(f"demo market stopped after {self.reported} closes")

    def housekeeping(self) -> None:
        """Keep the Drift PnL pools funded (the node's world building); print one status line."""
        pool = self.node.rpc("localnet_driftConfigure", {})["pnlPool"]
        if pool < PNL_POOL_FLOOR:
            self.node.rpc("localnet_driftConfigure", {"pnlPool": PNL_POOL_REFILL})
        from django.db.models import Sum

        from profitshare.models import IOU, Distribution, DistributionLeg, IouStatus

        demo_bots = f"demo{self.options.seed}-"
        paid = Distribution.objects.filter(bot__bot_id__startswith=demo_bots, paid__gt=0).count()
        open_ious = IOU.objects.filter(status__in=IouStatus.ACTIVE).count()
        legs = dict(DistributionLeg.objects.filter(distribution__bot__bot_id__startswith=demo_bots).exclude(
            role="creator").values("role").annotate(paid=Sum("paid")).values_list("role", "paid"))
        split = ", ".join(f"{role} {format_usdc(amount)}" for role, amount in sorted(legs.items()))
        self.say(f"demo market: {self.reported} closes reported this run; {paid} payouts so far; {open_ious} IOUs owed"
                 + (f"; legs paid (USDC): {split}" if split else ""))
