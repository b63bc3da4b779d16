"""Shared fixtures: a real local node (LiteSVM over JSON-RPC) on a free port."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from profitshare.localnet.node import LocalNode
from profitshare.localnet.server import RpcHttpServer


class LocalnetHandle:
    """A running local node for tests: ``url``, ``rpc(method, *params)``, and the node itself."""

    def __init__(self, server: RpcHttpServer) -> None:
        self.server = server
        self.node: LocalNode = server.node
        self.url = server.url
        self._http = httpx.Client(base_url=self.url, timeout=30)
        self._next_id = 0

    def rpc(self, method: str, *params: Any) -> Any:
        """Call a JSON-RPC method; returns ``result`` or raises ``RuntimeError`` with the error."""
        self._next_id += 1
        response = self._http.post(
            "/", json={"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)}
        )
        response.raise_for_status()
        body = response.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def close(self) -> None:
        self._http.close()


@pytest.fixture(scope="session")
def localnet_node():
    """One local node for the session (manual clock: time moves by ``localnet_advanceSlots``)."""
    server = RpcHttpServer(LocalNode(slot_ms=0, self_check=True), "127.0.0.1", 0)
    server.start()
    handle = LocalnetHandle(server)
    yield handle
    handle.close()
    server.stop()


@pytest.fixture
def localnet(localnet_node):
    """The session's local node with faults cleared before and after the test."""
    localnet_node.rpc("localnet_setFaults", {})
    yield localnet_node
    localnet_node.rpc("localnet_setFaults", {})


@pytest.fixture(scope="session")
def _replica_server(localnet_node):
    server = RpcHttpServer(localnet_node.node, "127.0.0.1", 0, name="replica", clock=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def replica(localnet, _replica_server):
    """A second URL in front of the session's node: its server is named ``"replica"``, so the
    ``endpoints`` faults can make it lag or fail on its own (cleared with ``localnet``'s)."""
    handle = LocalnetHandle(_replica_server)
    yield handle
    handle.close()


@pytest.fixture(autouse=True)
def _agent_key_encryption(settings):
    """A fresh Fernet key for agent wallet keys in every test (DEBUG is off under pytest)."""
    from cryptography.fernet import Fernet

    settings.QV_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


@pytest.fixture
def gateway(localnet, settings):
    """A chain gateway on the test node (short confirm timeout, fast polling); settings point
    ``get_gateway()`` at the same node."""
    from tests.chain.gateway_support import make_gateway

    settings.QV_RPC_URLS = [localnet.url]
    return make_gateway(localnet, confirm_timeout=2.0)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty local-memory cache (the sign-in rate limit counts in it).
    A Redis cache (REDIS_URL set for this process) is left alone: clearing it flushes the
    database the broker may share."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    cache = caches["default"]
    local = isinstance(cache, LocMemCache)
    if local:
        cache.clear()
    yield
    if local:
        cache.clear()


@pytest.fixture
def splits(localnet, settings):
    """Splits on, on the node: a 1.5 % platform fee and a three-level referral chain whose
    recipients hold USDC token accounts (``tests.splits.legs.split_world``)."""
    from tests.splits.legs import split_world

    return split_world(localnet, settings)
