"""RpcPool: retries, backoff and failover for reads; sends that are never repeated blindly.

Against real HTTP servers: a scripted ``http.server`` started here (answers 429/503/errors/
lost responses in a given order) and the local node's fault injection. No database.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from solders.pubkey import Pubkey

from profitshare.chain.batch import BatchOps
from profitshare.chain.errors import RpcRequestError, RpcUnavailable, SendOutcomeUnknown
from profitshare.chain.rpc import rpc_error_counts
from tests.chain.gateway_support import funded_agent, make_gateway, make_pool, send, wallet

OWNER = Pubkey.from_string("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin")
BALANCE = {"context": {"slot": 7, "apiVersion": "2.1.0"}, "value": 42}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedServer

    def log_message(self, *args):  # quiet
        pass

    def _write(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append(request)
            action = self.server.actions.pop(0) if self.server.actions else self.server.default
        kind = action[0]
        if kind == "sleep":
            time.sleep(action[1])
            kind, action = "result", ("result", action[2])
        if kind == "status":
            self._write(action[1], {"error": {"code": action[1], "message": "scripted"}})
        elif kind == "result":
            self._write(200, {"jsonrpc": "2.0", "id": request["id"], "result": action[1]})
        elif kind == "error":
            self._write(200, {"jsonrpc": "2.0", "id": request["id"], "error": action[1]})
        elif kind == "close":
            self.close_connection = True  # nothing written: the response is lost


class ScriptedServer(ThreadingHTTPServer):
    """Answers each POST with the next scripted action, then ``default``."""

    daemon_threads = True

    def __init__(self, actions, default=("result", BALANCE)) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.actions = list(actions)
        self.default = default
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def scripted():
    servers = []

    def start(actions=(), default=("result", BALANCE)):
        server = ScriptedServer(actions, default)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def dead_url() -> str:
    """A URL on which nothing listens (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def _balance(pool) -> int:
    return pool.read("getBalance", lambda c: c.get_balance(OWNER).value)


# --- reads ------------------------------------------------------------------------------------
def test_read_retries_429_and_503_then_succeeds_and_counts_errors(scripted):
    server = scripted([("status", 429), ("status", 503)])
    before = rpc_error_counts()
    assert _balance(make_pool(server.url, max_attempts=3)) == 42
    assert len(server.requests) == 3
    assert all(r["method"] == "getBalance" for r in server.requests)
    after = rpc_error_counts()
    assert after.get((server.url, "http_429"), 0) - before.get((server.url, "http_429"), 0) == 1
    assert after.get((server.url, "http_503"), 0) - before.get((server.url, "http_503"), 0) == 1


def test_read_persistent_503_raises_rpc_unavailable_after_max_attempts(scripted):
    server = scripted(default=("status", 503))
    with pytest.raises(RpcUnavailable) as caught:
        _balance(make_pool(server.url, max_attempts=3))
    assert len(server.requests) == 3
    assert caught.value.code == "rpc_unavailable"
    assert caught.value.method == "getBalance"
    assert [url for url, _ in caught.value.failures] == [server.url] * 3


def test_read_fails_over_from_a_dead_endpoint_and_then_prefers_the_live_one(scripted):
    server = scripted()
    dead = dead_url()
    pool = make_pool(dead, server.url, max_attempts=1)
    before = rpc_error_counts().get((dead, "connect"), 0)
    assert _balance(pool) == 42
    assert _balance(pool) == 42
    assert len(server.requests) == 2
    assert rpc_error_counts().get((dead, "connect"), 0) - before == 1  # tried once, then skipped


def test_read_timeout_is_retried(scripted):
    server = scripted([("sleep", 1.0, BALANCE)])
    assert _balance(make_pool(server.url, max_attempts=2, timeout=0.3)) == 42
    assert len(server.requests) == 2


def test_node_unhealthy_is_retried_but_other_rpc_errors_are_not(scripted):
    unhealthy = {"code": -32005, "message": "Node is unhealthy", "data": {"numSlotsBehind": 9}}
    server = scripted([("error", unhealthy)])
    assert make_pool(server.url).call("getBalance", str(OWNER))["value"] == 42
    assert len(server.requests) == 2

    bad = scripted(default=("error", {"code": -32602, "message": "Invalid params"}))
    with pytest.raises(RpcRequestError) as caught:
        make_pool(bad.url).call("getBalance", "nope")
    assert caught.value.rpc_code == -32602
    assert len(bad.requests) == 1


# --- sends ------------------------------------------------------------------------------------
RAW = b"\x01" + bytes(64) + b"signed transaction bytes"
SIG = "5" * 88


def test_send_lost_response_is_never_retried_even_with_a_healthy_second_endpoint(scripted):
    lossy = scripted([("close",)])
    healthy = scripted(default=("result", SIG))
    with pytest.raises(SendOutcomeUnknown) as caught:
        make_pool(lossy.url, healthy.url).send_transaction(RAW, SIG)
    assert caught.value.signature == SIG
    assert caught.value.code == "send_outcome_unknown"
    assert len(lossy.requests) == 1
    assert healthy.requests == []


def test_send_timeout_is_outcome_unknown_after_one_request(scripted):
    slow = scripted([("sleep", 1.0, SIG)])
    with pytest.raises(SendOutcomeUnknown):
        make_pool(slow.url, timeout=0.3).send_transaction(RAW, SIG)
    assert len(slow.requests) == 1


def test_send_502_may_have_been_forwarded_so_it_is_outcome_unknown(scripted):
    proxy = scripted([("status", 502)], default=("result", SIG))
    with pytest.raises(SendOutcomeUnknown):
        make_pool(proxy.url).send_transaction(RAW, SIG)
    assert len(proxy.requests) == 1


def test_send_fails_over_when_the_connection_is_refused(scripted):
    live = scripted(default=("result", SIG))
    assert make_pool(dead_url(), live.url).send_transaction(RAW, SIG) == SIG
    assert len(live.requests) == 1
    sent = live.requests[0]
    assert sent["method"] == "sendTransaction"
    assert sent["params"][1]["encoding"] == "base64"


def test_send_429_is_not_taken_and_the_same_bytes_are_sent_again(scripted):
    server = scripted([("status", 429)], default=("result", SIG))
    assert make_pool(server.url).send_transaction(RAW, SIG) == SIG
    assert len(server.requests) == 2
    assert server.requests[0]["params"][0] == server.requests[1]["params"][0]


def test_send_persistent_429_raises_rpc_unavailable_with_the_signature(scripted):
    server = scripted(default=("status", 429))
    with pytest.raises(RpcUnavailable) as caught:
        make_pool(server.url, max_attempts=2).send_transaction(RAW, SIG)
    assert caught.value.signature == SIG
    assert len(server.requests) == 2


# --- the local node's HTTP faults -------------------------------------------------------------
def test_node_http_errors_are_retried_until_reads_succeed(localnet):
    agent = funded_agent(localnet, lamports=123_456_789)
    gateway = make_gateway(localnet, max_attempts=12)
    localnet.rpc("localnet_setFaults", {"seed": 3, "httpErrorRate": 0.5})
    before = sum(n for (url, _), n in rpc_error_counts().items() if url == localnet.url)
    balances = [wallet(gateway, agent.pubkey()).lamports for _ in range(10)]
    after = sum(n for (url, _), n in rpc_error_counts().items() if url == localnet.url)
    assert balances == [123_456_789] * 10
    assert after > before  # some calls were answered 429/503 and retried


def test_node_persistent_http_errors_raise_rpc_unavailable_and_a_send_never_lands(localnet):
    agent = funded_agent(localnet, usdc=1_000_000)
    gateway = make_gateway(localnet, max_attempts=2)
    creator = funded_agent(localnet).pubkey()
    signed = gateway.build_payout(agent, creator, 250_000)
    localnet.rpc("localnet_setFaults", {"httpErrorRate": 1.0})
    with pytest.raises(RpcUnavailable):
        wallet(gateway, agent.pubkey())
    with pytest.raises(RpcUnavailable) as caught:
        send(gateway, signed)
    assert caught.value.signature == signed.signature
    localnet.rpc("localnet_setFaults", {})
    assert gateway.signature_status(signed.signature).state == "unknown"
    assert (wallet(gateway, creator).usdc or 0) == 0
    assert (wallet(gateway, agent.pubkey()).usdc or 0) == 1_000_000


# --- deciding a signature on one endpoint -------------------------------------------------------
EPOCH = {"absoluteSlot": 1_000, "blockHeight": 990, "epoch": 0, "slotIndex": 1_000, "slotsInEpoch": 432_000}


def _statuses_at(slot: int) -> dict:
    return {"context": {"slot": slot, "apiVersion": "2.1.0"}, "value": [None]}


def _ops(*urls: str, max_attempts: int = 3) -> BatchOps:
    """The gateway's decisions over a pool of ``urls`` (the scripted servers)."""
    ops = BatchOps()
    ops.pool = make_pool(*urls, max_attempts=max_attempts)
    return ops


def _decide(url: str, last_valid: int = 500) -> str:
    return _ops(url).decide({SIG: last_valid})[SIG].state


def test_not_found_is_expired_only_under_a_context_slot_at_or_past_the_heights_slot(scripted):
    caught_up = scripted([("result", EPOCH), ("result", _statuses_at(1_000))])
    assert _decide(caught_up.url) == "expired"
    height, statuses = caught_up.requests
    assert (height["method"], height["params"]) == ("getEpochInfo", [{"commitment": "finalized"}])
    assert statuses["method"] == "getSignatureStatuses"
    assert statuses["params"][1] == {"searchTransactionHistory": True, "minContextSlot": 1_000}
    # a node (or a balancer behind one URL) that ignored minContextSlot and answered from behind
    behind = scripted([("result", EPOCH), ("result", _statuses_at(999))])
    assert _decide(behind.url) == "unknown"
    # its height is not past the last valid block height yet
    assert _decide(scripted([("result", EPOCH), ("result", _statuses_at(1_000))]).url, last_valid=990) == "unknown"


def test_a_decision_never_mixes_endpoints(scripted):
    """The first endpoint answers the height and then refuses the statuses: the whole decision
    moves to the second, which answers both."""
    refuses = scripted([("result", EPOCH), ("status", 503)])
    behind = scripted([("result", {**EPOCH, "absoluteSlot": 400, "blockHeight": 400}), ("result", _statuses_at(400))])
    assert _ops(refuses.url, behind.url, max_attempts=1).decide({SIG: 500})[SIG].state == "unknown"  # 400 is not past 500, whatever the first said
    assert [r["method"] for r in behind.requests] == ["getEpochInfo", "getSignatureStatuses"]
    assert behind.requests[1]["params"][1]["minContextSlot"] == 400


def test_a_decision_behind_everywhere_is_rpc_unavailable(scripted):
    minus_32016 = {"code": -32016, "message": "Minimum context slot has not been reached", "data": {"contextSlot": 3}}
    server = scripted([("result", EPOCH), ("error", minus_32016)] * 2)
    with pytest.raises(RpcUnavailable):
        _ops(server.url, max_attempts=2).decide({SIG: 500})
    assert len(server.requests) == 4
