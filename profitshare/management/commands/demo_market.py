"""``python manage.py demo_market``: a live market on the local node, traded through the real
intake API (see ``profitshare.demo``). ``make run`` starts it; Ctrl-C / SIGTERM stop it cleanly.

A re-run resumes: bots, subscriptions and referral links that exist are reused (the API answers
200), agent wallets already funded and USDC accounts already opened on the node are not funded
or opened again, staged cases already played are skipped. The platform fee is the settings'
(``QV_PLATFORM_FEE_BPS`` to ``QV_PLATFORM_TREASURY``, whose USDC account the demo opens), as the
web server that splits the shares has them; ``run_product`` sets the demo's.
"""

from __future__ import annotations

import signal
import threading

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from profitshare.demo.clients import ApiError, IntakeClient, NodeClient, NodeError
from profitshare.demo.market import Market, Options
from profitshare.demo.stage import StageTimeout


class Command(BaseCommand):
    help = "Build a demo world on the local node and keep it trading through the intake API until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--rpc-url", default=(settings.QV_RPC_URLS or ["http://127.0.0.1:8899"])[0])
        parser.add_argument("--api-url", default="http://127.0.0.1:8000")
        parser.add_argument("--seed", type=int, default=settings.QV_DEMO_SEED)
        parser.add_argument("--rate", type=float, default=1.0, help="closes per second")
        parser.add_argument("--subscribers", type=int, default=36, help="subscribers in the close stream")
        parser.add_argument("--once", action="store_true", help="build, stage, one round of closes, then exit")
        parser.add_argument("--round", type=int, default=12, help="closes in the --once round")
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed to one wait")

    def handle(self, *args, **options):
        if options["rate"] <= 0 or options["subscribers"] < 1 or options["round"] < 0:
            raise CommandError("--rate must be > 0, --subscribers >= 1, --round >= 0")
        if not settings.QV_INTAKE_SECRET:
            raise CommandError("QV_INTAKE_SECRET is not set: the demo signs its intake requests with it")
        stop = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        api = IntakeClient(options["api_url"], settings.QV_INTAKE_SECRET, admin_secret=settings.QV_ADMIN_SECRET)
        node = NodeClient(options["rpc_url"])
        market = Market(
            api, node,
            Options(seed=options["seed"], subscribers=options["subscribers"], rate=options["rate"],
                    once=options["once"], timeout=options["timeout"], round_size=options["round"],
                    platform_fee_bps=settings.QV_PLATFORM_FEE_BPS,
                    treasury=settings.QV_PLATFORM_TREASURY if settings.QV_PLATFORM_FEE_BPS else None),
            say=lambda line: self.stdout.write(line),
            stopping=stop.is_set,
        )
        try:
            self._reachable(api, node, options, stop)
            market.run()
        except (ApiError, NodeError, StageTimeout) as exc:
            raise CommandError(f"demo market: {exc}") from exc
        finally:
            api.close()
            node.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _reachable(self, api: IntakeClient, node: NodeClient, options: dict, stop: threading.Event) -> None:
        """Wait up to ``--timeout`` s for the node and the API to answer (a clear message, not a
        traceback, when they never do)."""
        deadline = options["timeout"]
        for what, url, probe in (
            ("local node", options["rpc_url"], lambda: node.rpc("getHealth")),
            ("web server", options["api_url"], lambda: api.http.get("/openapi.json").raise_for_status()),
        ):
            waited = 0.0
            while True:
                try:
                    probe()
                    break
                except (httpx.HTTPError, NodeError) as exc:
                    if waited >= deadline or stop.is_set():
                        raise CommandError(f"the {what} at {url} does not answer ({exc})") from exc
                    stop.wait(0.5)
                    waited += 0.5
