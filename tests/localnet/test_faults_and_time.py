"""Fault injection, the slot clock, snapshots and the ``localnet`` command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.api import Client
from solana.rpc.types import TxOpts
from solders.keypair import Keypair
from spl.token.instructions import get_associated_token_address

from profitshare.chain.drift.driftpy_adapter import DriftpyAdapter
from profitshare.localnet import drift_program
from profitshare.localnet.node import LocalNode
from profitshare.localnet.server import RpcHttpServer
from tests.chain.gateway_support import make_pool
from tests.localnet.helpers import USDC, drift_transaction, funded_wallet, usdc_payout

ROOT = Path(__file__).resolve().parents[2]


def token_amount(client, owner) -> int:
    return int(client.get_token_account_balance(get_associated_token_address(owner, USDC)).value.amount)


def test_dropped_send_answers_a_signature_that_never_lands(localnet):
    client = Client(localnet.url)
    payer = funded_wallet(localnet, usdc=1_000)
    creator = Keypair().pubkey()
    localnet.rpc("localnet_setFaults", {"seed": 7, "dropRate": 1.0})
    tx = usdc_payout(client, payer, creator, 10)
    signature = client.send_transaction(tx).value
    assert signature == tx.signatures[0]
    localnet.rpc("localnet_setFaults", {})
    assert client.get_signature_statuses([signature], search_transaction_history=True).value == [None]
    assert token_amount(client, payer.pubkey()) == 1_000


def test_lost_response_still_lands(localnet):
    client = Client(localnet.url)
    payer = funded_wallet(localnet, usdc=1_000)
    creator = Keypair().pubkey()
    localnet.rpc("localnet_setFaults", {"loseResponseRate": 1.0})
    tx = usdc_payout(client, payer, creator, 10)
    with pytest.raises(SolanaRpcException) as lost:
        client.send_transaction(tx)
    assert isinstance(lost.value.__cause__, httpx.RemoteProtocolError)
    localnet.rpc("localnet_setFaults", {})
    status = client.get_signature_statuses([tx.signatures[0]]).value[0]
    assert status is not None and status.err is None
    assert token_amount(client, creator) == 10


def test_http_errors_hit_standard_calls_only(localnet):
    localnet.rpc("localnet_setFaults", {"seed": 3, "httpErrorRate": 1.0})
    statuses = set()
    for _ in range(20):
        response = httpx.post(localnet.url, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot"})
        statuses.add(response.status_code)
    assert statuses == {429, 503}
    assert localnet.rpc("localnet_getFaults")["httpErrorRate"] == 1.0  # localnet_ calls still served


def test_latency_delays_standard_calls(localnet):
    localnet.rpc("localnet_setFaults", {"latencyMs": 200})
    started = time.monotonic()
    localnet.rpc("getSlot")
    assert time.monotonic() - started >= 0.2


def test_faults_replay_from_their_seed(localnet):
    def decisions(seed):
        localnet.rpc("localnet_setFaults", {"seed": seed, "httpErrorRate": 0.5})
        out = [
            httpx.post(localnet.url, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).status_code
            for _ in range(30)
        ]
        return out

    assert decisions(11) == decisions(11)
    assert decisions(11) != decisions(12)


def test_partial_withdraw_delivers_part(localnet):
    client = Client(localnet.url)
    agent = funded_wallet(localnet, usdc=1)
    localnet.rpc("localnet_driftDeposit", str(agent.pubkey()), 0, 10_000_000)
    localnet.rpc("localnet_setFaults", {"partialWithdrawRatio": 0.25})
    ata = get_associated_token_address(agent.pubkey(), USDC)
    adapter = DriftpyAdapter(make_pool(localnet.url))
    ixs = adapter.build_withdraw_instructions(agent, 0, 0, 4_000_001, True, user_token_account=ata)
    client.send_transaction(drift_transaction(client, agent, ixs))
    assert token_amount(client, agent.pubkey()) == 1 + 1_000_000  # floor(4_000_001 / 4)
    state = localnet.rpc("localnet_driftAccount", str(agent.pubkey()), 0)
    assert state["collateral"] == 9_000_000  # the rest of the deposit stays the subscriber's


def test_slots_advance_on_a_clock():
    server = RpcHttpServer(LocalNode(slot_ms=20), "127.0.0.1", 0)
    server.start()
    try:
        client = Client(server.url)
        first = client.get_latest_blockhash().value
        time.sleep(0.3)
        second = client.get_latest_blockhash().value
        assert second.last_valid_block_height - first.last_valid_block_height >= 5
        assert second.blockhash != first.blockhash
        clock_slot = server.node.ledger.svm.get_clock().slot
        assert clock_slot >= server.node.ledger.slot - 1
    finally:
        server.stop()


def test_snapshot_restores_state_and_remembers_signatures(tmp_path):
    path = tmp_path / "node.json"
    node = LocalNode(slot_ms=0)
    server = RpcHttpServer(node, "127.0.0.1", 0)
    server.start()
    client = Client(server.url)
    payer = Keypair()
    creator = Keypair().pubkey()
    try:
        client.request_airdrop(payer.pubkey(), 10**9)
        node.fund_usdc(payer.pubkey(), 5_000)
        node.drift.deposit(payer.pubkey(), 2, 77)
        tx = usdc_payout(client, payer, creator, 1_234)
        signature = client.send_transaction(tx).value
    finally:
        server.stop()
    node.save_snapshot(path)
    restored = LocalNode.from_snapshot(path, slot_ms=0)
    server = RpcHttpServer(restored, "127.0.0.1", 0)
    server.start()
    try:
        client = Client(server.url)
        assert token_amount(client, creator) == 1_234
        assert token_amount(client, payer.pubkey()) == 5_000 - 1_234
        assert client.get_signature_statuses([signature], search_transaction_history=True).value[0]
        assert restored.drift.account_json(payer.pubkey(), 2)["collateral"] == 77
        restored.drift.check_invariants()
        assert client.get_transaction(signature).value.transaction.meta.fee == 5_000
        # the old bytes cannot land again, and new payouts work
        client.send_transaction(tx, opts=TxOpts(skip_preflight=True))
        client.send_transaction(usdc_payout(client, payer, creator, 6))
        assert token_amount(client, creator) == 1_240
        vault = drift_program.spot_vault_pda(0)
        assert int(client.get_token_account_balance(vault).value.amount) >= 77
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_command_serves_saves_on_sigint_and_reports_a_busy_port(tmp_path):
    port, replica_port = free_port(), free_port()
    snapshot = tmp_path / "state.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "manage.py", "localnet", "--port", str(port), "--snapshot", str(snapshot),
               "--replica-port", str(replica_port)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).text == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        wallet = Keypair().pubkey()
        Client(f"http://127.0.0.1:{port}").request_airdrop(wallet, 42)
        replica = Client(f"http://127.0.0.1:{replica_port}")  # the same node on a second URL
        assert replica.get_balance(wallet).value == 42
        for method, params in (("localnet_advanceSlots", [10]), ("localnet_setFaults", [{"endpoints": {"replica": {"lagSlots": 5}}}])):
            httpx.post(f"http://127.0.0.1:{port}", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        primary_slot = Client(f"http://127.0.0.1:{port}").get_slot().value
        assert primary_slot - 5 <= replica.get_slot().value <= primary_slot - 3  # 5 behind a running clock
        busy = subprocess.run(
            [sys.executable, "manage.py", "localnet", "--port", str(port)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )
        assert busy.returncode != 0
        assert f"port {port} is already in use" in busy.stderr
        assert "Traceback" not in busy.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "saved" in out and snapshot.exists()
    restored = LocalNode.from_snapshot(snapshot, slot_ms=0)
    assert restored.ledger.get_account(wallet).lamports == 42


def test_unreadable_snapshot_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ValueError, match="cannot read snapshot"):
        LocalNode.from_snapshot(bad)
