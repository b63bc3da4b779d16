"""``python manage.py run_product``: the whole product on one machine (``make run``).

Starts, each in its own process group: the local node (``localnet``, state kept in
``var/localnet-state.json`` so a second run resumes), a django-q2 cluster (``qcluster``), the
web server on http://127.0.0.1:8000 and the demo market (``demo_market``: a live world traded
through the intake API; ``--no-demo`` leaves it out). The demo's sign-ins (``/demo/``) are on
only in this process tree (``QV_DEMO=1`` in the children's environment) and only with DEBUG on
(``make run`` sets ``QV_DEBUG=1``; without it ``--no-demo`` is required). With the demo, and
unless ``QV_PLATFORM_FEE_BPS`` or ``QV_PLATFORM_TREASURY`` is set (or ``QV_REFERRAL_BPS`` leaves
no room for it), the children also get the demo's platform fee (1 %) to the demo treasury
(``profitshare.demo.splits``). Ctrl-C stops all of
them: SIGTERM, a bounded wait, then SIGKILL of any process group still alive (a ``qcluster`` can
linger for minutes after SIGTERM). A port already in use is a clear message, not a traceback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from profitshare.demo import splits
from profitshare.management.processes import stop_process_groups, wait_until_answering

STOP_GRACE_SECONDS = 10


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0


class Command(BaseCommand):
    help = "Run the local node, a django-q2 cluster and the web server until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--web-port", type=int, default=8000)
        parser.add_argument("--rpc-port", type=int, default=8899)
        parser.add_argument("--no-demo", action="store_true", help="do not run the demo market")
        parser.add_argument("--demo-seed", type=int, default=settings.QV_DEMO_SEED)
        parser.add_argument("--demo-rate", type=float, default=1.0, help="demo closes per second")
        parser.add_argument("--demo-subscribers", type=int, default=36)

    def handle(self, *args, **options):
        web_port, rpc_port = options["web_port"], options["rpc_port"]
        demo = not options["no_demo"]
        if demo and not settings.DEBUG:
            raise CommandError("the demo market needs QV_DEBUG=1 (make run sets it); use --no-demo without it")
        for name, port in (("web server", web_port), ("local node", rpc_port)):
            if not port_free("127.0.0.1", port):
                raise CommandError(
                    f"port {port} ({name}) is already in use: stop what holds it "
                    f"(e.g. a previous `make run`) or pick another port"
                )
        call_command("setup_schedules", verbosity=0)
        state = Path(settings.BASE_DIR) / "var" / "localnet-state.json"
        state.parent.mkdir(parents=True, exist_ok=True)
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        env = {
            **os.environ,
            "SOLANA_RPC_URLS": f"http://127.0.0.1:{rpc_port}",
            "PYTHONUNBUFFERED": "1",
            # the children run with this process's DEBUG (make run: on; DEBUG is off by default)
            "QV_DEBUG": "1" if settings.DEBUG else "0",
        }
        if demo:
            env.update({"QV_DEMO": "1", "QV_DEMO_SEED": str(options["demo_seed"])})
            # the demo's platform fee, to its own treasury (the setting's default stays 0)
            env.update(splits.platform_env(os.environ, options["demo_seed"], settings.QV_REFERRAL_BPS))
        children: list[tuple[str, subprocess.Popen]] = []
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, command in (
                ("localnet", [*manage, "localnet", "--port", str(rpc_port), "--snapshot", str(state)]),
                ("qcluster", [*manage, "qcluster"]),
                ("web", [*manage, "runserver", f"127.0.0.1:{web_port}", "--noreload"]),
            ):
                children.append((name, subprocess.Popen(command, env=env, start_new_session=True)))
                if name == "localnet":
                    self._wait_for(f"http://127.0.0.1:{rpc_port}/health", "local node")
            self._wait_for(f"http://127.0.0.1:{web_port}/admin/login/", "web server")
            if demo:
                command = [
                    *manage, "demo_market", "--rpc-url", f"http://127.0.0.1:{rpc_port}",
                    "--api-url", f"http://127.0.0.1:{web_port}", "--seed", str(options["demo_seed"]),
                    "--rate", str(options["demo_rate"]), "--subscribers", str(options["demo_subscribers"]),
                ]
                children.append(("demo", subprocess.Popen(command, env=env, start_new_session=True)))
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nQuantumVault profit share is running:\n"
                    f"  web     http://127.0.0.1:{web_port}/  (admin: /admin/, API: /api/v1/docs)\n"
                    f"  node    http://127.0.0.1:{rpc_port}   (Solana JSON-RPC; the real Drift v2.84.0 program)\n"
                    + (self._demo_banner(web_port, options["demo_seed"], env) if demo else "")
                    + "Ctrl-C stops everything.\n"
                )
            )
            while not stopping:
                for name, proc in children:
                    if proc.poll() is not None and name == "demo":
                        if proc.returncode:
                            self.stderr.write(f"the demo market exited with status {proc.returncode}; the rest keeps running")
                        children.remove((name, proc))
                        break
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with status {proc.returncode}; stopping")
                        stopping = True
                time.sleep(0.5)
        finally:
            self._stop_all(children)

    def _demo_banner(self, web_port: int, seed: int, env: dict) -> str:
        """The demo sign-ins: the page, the demo creators', referrers' and a few subscribers'
        wallets, and the platform fee the children run with."""
        from profitshare.demo import cases, world

        plan = world.plan(seed, 3, cases.staged_subscriptions())
        lines = [f"  demo    http://127.0.0.1:{web_port}/demo/  (sign in as a demo wallet: the server signs SIWS with its key)"]
        for label, address in plan.creators.items():
            lines.append(f"          creator    {label:<10} {address}")
        for label in splits.referrer_labels():
            refers = ", ".join(splits.referred_by(label))
            lines.append(f"          referrer   {label:<10} {splits.wallet(seed, label)}  (refers {refers}; /earnings/)")
        for label, sub in list(plan.subscriptions.items())[:3] + [("lowsol", plan.subscriptions["lowsol"])]:
            lines.append(f"          subscriber {label:<10} {sub.subscriber_wallet}")
        fee = env.get("QV_PLATFORM_FEE_BPS") or "0"
        lines.append(f"          platform fee {fee} bps to {env.get('QV_PLATFORM_TREASURY') or '(no treasury)'}"
                     f"  (the demo admin's console: /console/treasury/)")
        return "\n".join(lines) + "\n"

    def _wait_for(self, url: str, what: str, timeout: float = 60) -> None:
        if not wait_until_answering(url, timeout=timeout):
            raise CommandError(f"the {what} did not start within {timeout:.0f} s ({url})")

    def _stop_all(self, children: list[tuple[str, subprocess.Popen]]) -> None:
        stop_process_groups(children, grace=STOP_GRACE_SECONDS, on_timeout=lambda name: self.stderr.write(
            f"{name} did not stop in {STOP_GRACE_SECONDS} s: killing it"))
        self.stdout.write("stopped")
