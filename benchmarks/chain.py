"""Chain throughput: the SVM in-process vs the local node over JSON-RPC.

Prints, in one run (so the figures share one machine state):

1. SVM transfers/s in-process: pre-signed USDC ``transfer_checked`` payouts (destination ATA
   exists) executed by a bare ``LiteSVM``; and the same through ``LocalNode`` (with the node's
   bookkeeping: signature table, blockhash window, pre/post balances), both in this process;
2. transfers/s through JSON-RPC by bare solana-py ``Client``s (each building, signing and
   sending its own transactions, preflight on), 1 client and 4 concurrent clients, each client
   its own process, the node in another process;
3. the ratio of (2, 4 clients) to (1, bare LiteSVM). Target: at least 0.5.

Every RPC transfer is checked at the end: the destination's token balance must equal the sum
sent. Usage: ``.venv/bin/python benchmarks/chain.py [--transfers N]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantumvault.settings")
os.environ.setdefault("QV_DEBUG", "1")  # development settings (DEBUG is off by default)

import httpx  # noqa: E402
from solana.rpc.api import Client  # noqa: E402
from solders.hash import Hash  # noqa: E402
from solders.keypair import Keypair  # noqa: E402
from solders.litesvm import LiteSVM  # noqa: E402
from solders.message import Message  # noqa: E402
from solders.pubkey import Pubkey  # noqa: E402
from solders.transaction import Transaction, VersionedTransaction  # noqa: E402
from spl.token.constants import TOKEN_PROGRAM_ID  # noqa: E402
from spl.token.instructions import (  # noqa: E402
    TransferCheckedParams,
    get_associated_token_address,
    transfer_checked,
)

USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")


def transfer_tx(payer: Keypair, destination: Pubkey, amount: int, blockhash: Hash) -> Transaction:
    """A signed USDC transfer_checked of ``amount`` base units from ``payer``'s ATA."""
    ix = transfer_checked(
        TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=get_associated_token_address(payer.pubkey(), USDC),
            mint=USDC,
            dest=get_associated_token_address(destination, USDC),
            owner=payer.pubkey(),
            amount=amount,
            decimals=6,
        )
    )
    return Transaction([payer], Message([ix], payer.pubkey()), blockhash)


def funded_node():
    """An in-process LocalNode, a payer with SOL and USDC, and a destination whose ATA exists."""
    from profitshare.localnet.node import LocalNode

    node = LocalNode(slot_ms=0)
    payer, destination = Keypair(), Keypair().pubkey()
    node.ledger.airdrop(payer.pubkey(), 10**12)
    node.fund_usdc(payer.pubkey(), 10**15)
    node.fund_usdc(destination, 1)
    return node, payer, destination, Hash.from_string(node.ledger.latest_blockhash)


def timed(transfers: int, run) -> float:
    """Transfers/s of ``run(n)`` called for n in 0..transfers-1."""
    started = time.perf_counter()
    for n in range(transfers):
        run(n)
    return transfers / (time.perf_counter() - started)


def bench_bare_litesvm(transfers: int) -> float:
    """Transfers/s of pre-signed payouts through a bare LiteSVM (node's mint setup reused)."""
    node, payer, destination, blockhash = funded_node()
    svm: LiteSVM = node.ledger.svm
    txs = [transfer_tx(payer, destination, n + 1, blockhash) for n in range(transfers)]
    return timed(transfers, lambda n: svm.send_transaction(txs[n]))


def bench_node_in_process(transfers: int) -> float:
    """Transfers/s of pre-signed payouts through LocalNode (with its bookkeeping), in-process."""
    node, payer, destination, blockhash = funded_node()
    txs = [transfer_tx(payer, destination, n + 1, blockhash) for n in range(transfers)]
    return timed(
        transfers,
        lambda n: node.send_transaction_parsed(VersionedTransaction.from_legacy(txs[n]), bytes(txs[n]), preflight=True),
    )


def bench_client_loop_in_process(transfers: int) -> float:
    """Transfers/s of the RPC clients' own loop (build, sign, execute) with LiteSVM in-process:
    the same work as a JSON-RPC client minus the transport."""
    node, payer, destination, blockhash = funded_node()
    svm: LiteSVM = node.ledger.svm
    return timed(transfers, lambda n: svm.send_transaction(transfer_tx(payer, destination, n + 1, blockhash)))


def serve(port: int, ready) -> None:
    """Run the local node in this (child) process until terminated."""
    import django

    django.setup()
    from profitshare.localnet.node import LocalNode
    from profitshare.localnet.server import RpcHttpServer

    server = RpcHttpServer(LocalNode(slot_ms=400), "127.0.0.1", port)
    server.node.start_clock()
    ready.set()
    server.serve_forever()


def client_worker(url: str, payer_bytes: bytes, destination: str, transfers: int, barrier, out) -> None:
    """One bare solana-py client: build, sign and send ``transfers`` payouts."""
    client = Client(url, timeout=30)
    payer = Keypair.from_bytes(payer_bytes)
    dest = Pubkey.from_string(destination)
    blockhash = client.get_latest_blockhash().value.blockhash
    barrier.wait()
    started = time.perf_counter()
    for n in range(transfers):
        if n % 100 == 99:
            blockhash = client.get_latest_blockhash().value.blockhash
        client.send_transaction(transfer_tx(payer, dest, n + 1, blockhash))
    out.put((started, time.perf_counter()))


def bench_rpc(url: str, clients: int, transfers_per_client: int, server_pid: int) -> tuple[float, float]:
    """(transfers/s, node CPU µs per transfer) through JSON-RPC with ``clients`` client processes.

    The node's CPU time (user + system, read from /proc) shows what serving costs the node
    itself, apart from what the clients' own HTTP stack costs them on the same cores.
    """
    rpc = httpx.Client(base_url=url, timeout=30)

    def call(method, *params):
        body = rpc.post("/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        return body.json()["result"]

    destination = Keypair().pubkey()
    call("localnet_fundUsdc", str(destination), 1)
    payers = []
    for _ in range(clients):
        payer = Keypair()
        call("requestAirdrop", str(payer.pubkey()), 10**12)
        call("localnet_fundUsdc", str(payer.pubkey()), 10**15)
        payers.append(payer)
    barrier, out = mp.Barrier(clients), mp.Queue()
    procs = [
        mp.Process(
            target=client_worker,
            args=(url, bytes(p), str(destination), transfers_per_client, barrier, out),
        )
        for p in payers
    ]
    for proc in procs:
        proc.start()
    cpu_before = process_cpu_seconds(server_pid)
    spans = [out.get(timeout=600) for _ in procs]
    cpu_after = process_cpu_seconds(server_pid)
    for proc in procs:
        proc.join()
    total = clients * transfers_per_client
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    ata = get_associated_token_address(destination, USDC)
    balance = int(call("getTokenAccountBalance", str(ata))["value"]["amount"])
    expected = 1 + clients * sum(range(1, transfers_per_client + 1))
    if balance != expected:
        raise SystemExit(f"lost transfers: balance {balance}, expected {expected}")
    return total / elapsed, (cpu_after - cpu_before) / total * 1e6


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=2_000, help="transfers per measurement")
    args = parser.parse_args()
    import django

    django.setup()
    n = args.transfers
    print(f"cpus: {os.cpu_count()}, transfers per measurement: {n}")
    bare = bench_bare_litesvm(n)
    print(f"in-process, bare LiteSVM (pre-signed):          {bare:8.0f} transfers/s")
    node_rate = bench_node_in_process(n)
    print(f"in-process, LocalNode bookkeeping (pre-signed): {node_rate:8.0f} transfers/s")
    client_loop = bench_client_loop_in_process(n)
    print(f"in-process, client loop (build+sign+LiteSVM):   {client_loop:8.0f} transfers/s")

    port = free_port()
    ready = mp.Event()
    server = mp.Process(target=serve, args=(port, ready), daemon=True)
    server.start()
    if not ready.wait(60):
        raise SystemExit("local node did not start")
    url = f"http://127.0.0.1:{port}"
    try:
        one, one_cpu = bench_rpc(url, 1, n, server.pid)
        print(f"JSON-RPC, 1 solana-py client (build+sign+send): {one:8.0f} transfers/s"
              f"  (node CPU {one_cpu:.0f} µs/transfer)")
        four, four_cpu = bench_rpc(url, 4, n // 4, server.pid)
        print(f"JSON-RPC, 4 solana-py clients:                  {four:8.0f} transfers/s"
              f"  (node CPU {four_cpu:.0f} µs/transfer)")
    finally:
        server.terminate()
        server.join(5)
    print(f"ratio JSON-RPC (4 clients) / bare in-process:   {four / bare:8.2f} (target >= 0.50)")
    print(f"ratio JSON-RPC (4 clients) / LocalNode in-proc: {four / node_rate:8.2f}")
    print(f"ratio JSON-RPC (4 clients) / client loop in-process: {four / client_loop:8.2f}")
    print(f"node capacity over JSON-RPC (1e6 / node CPU µs):  {1e6 / four_cpu:8.0f} transfers/s")


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
