"""``python manage.py localnet``: the local Solana node on the real SVM, over JSON-RPC."""

from __future__ import annotations

import errno
import signal
import threading
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from profitshare.localnet.faults import Faults
from profitshare.localnet.node import DEFAULT_PNL_POOL, DEFAULT_SLOT_MS, LocalNode
from profitshare.localnet.server import RpcHttpServer


class Command(BaseCommand):
    help = (
        "Run the local Solana node (LiteSVM: real SPL Token/ATA programs, fees and rent, and the "
        "real Drift v2.84.0 program) serving JSON-RPC on 127.0.0.1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8899)
        parser.add_argument(
            "--replica-port", type=int, default=None,
            help="also serve the same node on this port as the server named 'replica' (its own lagSlots and HTTP faults)",
        )
        parser.add_argument("--slot-ms", type=int, default=DEFAULT_SLOT_MS, help="milliseconds per slot (0: manual)")
        parser.add_argument("--snapshot", type=Path, help="state file: restored on start, saved on stop")
        parser.add_argument("--pnl-pool", type=int, default=DEFAULT_PNL_POOL, help="initial PnL pool of each Drift perp market (USDC base units)")
        parser.add_argument("--fault-seed", type=int, default=0)
        parser.add_argument("--drop-rate", type=float, default=0.0)
        parser.add_argument("--lose-response-rate", type=float, default=0.0)
        parser.add_argument("--latency-ms", type=int, default=0)
        parser.add_argument("--http-error-rate", type=float, default=0.0)
        parser.add_argument("--partial-withdraw-ratio", type=float, default=None)

    def handle(self, *args, **options):
        try:
            faults = Faults.from_json(
                {
                    "seed": options["fault_seed"],
                    "dropRate": options["drop_rate"],
                    "loseResponseRate": options["lose_response_rate"],
                    "latencyMs": options["latency_ms"],
                    "httpErrorRate": options["http_error_rate"],
                    "partialWithdrawRatio": options["partial_withdraw_ratio"],
                }
            )
        except ValueError as exc:
            raise CommandError(f"bad fault flag: {exc}") from exc
        snapshot: Path | None = options["snapshot"]
        if snapshot is not None and snapshot.exists():
            try:
                node = LocalNode.from_snapshot(snapshot, slot_ms=options["slot_ms"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"restored {snapshot} at slot {node.ledger.slot}")
        else:
            node = LocalNode(slot_ms=options["slot_ms"], pnl_pool=options["pnl_pool"])
        node.set_faults(faults)
        server = self._listen(node, options["host"], options["port"])
        replica = None
        if options["replica_port"] is not None:
            replica = self._listen(node, options["host"], options["replica_port"], name="replica", clock=False)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        server.start()
        if replica is not None:
            replica.start()
            self.stdout.write(f"replica of the same node on {replica.url} (server name 'replica')")
        info = node.info()
        self.stdout.write(
            f"localnet listening on {server.url} (USDC mint {info['usdcMint']}, "
            f"Drift v{info['driftVersion']} at {info['driftProgram']}; "
            f"{node.slot_ms} ms/slot; priority fees are not charged)"
        )
        stop.wait()
        self.stdout.write("localnet stopping")
        if replica is not None:
            replica.stop()
        server.stop()
        if snapshot is not None:
            node.save_snapshot(snapshot)
            self.stdout.write(f"saved {snapshot}")

    @staticmethod
    def _listen(node: LocalNode, host: str, port: int, **kwargs) -> RpcHttpServer:
        try:
            return RpcHttpServer(node, host, port, **kwargs)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(f"port {port} is already in use: stop the other node or pass --port") from exc
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
