"""The demo's two connections: the signed intake API (as the trading platform calls it) and the
local node's JSON-RPC (standard and ``localnet_*`` world-building methods)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
)

from profitshare.api.auth import signed_headers
from profitshare.chain.errors import RpcRequestError, RpcUnavailable
from profitshare.chain.rpc import RpcPool


class ApiError(Exception):
    """The intake API answered ``status`` (>= 400) with ``body`` (the decoded JSON or text)."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path}: HTTP {status} {body}")
        self.status = status
        self.body = body


class IntakeClient:
    """HTTP client of ``/api/v1`` that signs every request: ``X-QV-Timestamp`` (unix seconds)
    and ``X-QV-Signature`` = hex HMAC-SHA256 of ``"{timestamp}.{METHOD}.{path}.{raw body}"``
    (signature v2, ``profitshare.api.auth.sign``; the path as httpx sends it, query included)
    with ``secret`` (the platform's ``QV_INTAKE_SECRET``, or the admin secret for admin routes)."""

    def __init__(self, base_url: str, secret: str, *, admin_secret: str = "", timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", timeout=timeout)
        self.secret = secret
        self.admin_secret = admin_secret

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def request(self, method: str, path: str, body: dict | None = None, *, admin: bool = False) -> tuple[int, Any]:
        """Send one signed request; returns (status, decoded JSON). Raises ``ApiError`` on any
        4xx/5xx and ``httpx.TransportError`` when the server cannot be reached."""
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        secret = self.admin_secret if admin else self.secret
        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = self.http.build_request(method, path, content=raw if body is not None else None, headers=headers)
        request.headers.update(signed_headers(secret, method, request.url.raw_path.decode("ascii"), raw))
        response = self.http.send(request)
        try:
            decoded = response.json()
        except ValueError:
            decoded = response.text
        if response.status_code >= 400:
            raise ApiError(method, path, response.status_code, decoded)
        return response.status_code, decoded

    def post(self, path: str, body: dict, *, admin: bool = False) -> tuple[int, Any]:
        """Signed POST with a JSON body; see ``request``."""
        return self.request("POST", path, body, admin=admin)

    def get(self, path: str, *, admin: bool = False) -> Any:
        """Signed GET; returns the decoded JSON (raises ``ApiError`` on >= 400)."""
        return self.request("GET", path, admin=admin)[1]


class NodeError(Exception):
    """The node answered a JSON-RPC error object."""


class NodeClient:
    """The local node's JSON-RPC (``rpc(method, *params)`` returns ``result``), spoken through
    the chain package's ``RpcPool`` (one endpoint, one try: world-building calls are not
    idempotent, so nothing is retried behind the caller's back)."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.pool = RpcPool([url], timeout_seconds=timeout, max_attempts=1)
        self._mint: Pubkey | None = None

    def close(self) -> None:
        """Close the HTTP connections."""
        self.pool.close()

    def rpc(self, method: str, *params: Any) -> Any:
        """Call ``method``; returns its ``result``. Raises ``NodeError`` for a JSON-RPC error or
        a node that does not answer."""
        try:
            return self.pool.call(method, *params)
        except (RpcRequestError, RpcUnavailable) as exc:
            raise NodeError(f"{method}: {exc}") from exc

    def usdc_mint(self) -> Pubkey:
        """The node's USDC mint (read once)."""
        if self._mint is None:
            self._mint = Pubkey.from_string(self.rpc("localnet_info")["usdcMint"])
        return self._mint

    def usdc_balance(self, owner: str) -> int | None:
        """USDC base units in ``owner``'s associated token account; None when it does not exist."""
        ata = get_associated_token_address(Pubkey.from_string(owner), self.usdc_mint())
        if self.rpc("getAccountInfo", str(ata), {"encoding": "base64"})["value"] is None:
            return None
        return int(self.rpc("getTokenAccountBalance", str(ata))["value"]["amount"])

    def open_usdc_account(self, owner: str, payer: Keypair) -> bool:
        """Create ``owner``'s USDC associated token account (empty) when it does not exist, by a
        real transaction of the ATA program's idempotent create, signed by ``payer`` (who pays
        the fee and the rent, 2,039,280 lamports). Returns True when this call created it.
        Raises ``NodeError`` when the node refuses the transaction."""
        if self.usdc_balance(owner) is not None:
            return False
        ix = create_idempotent_associated_token_account(payer.pubkey(), Pubkey.from_string(owner), self.usdc_mint())
        blockhash = Hash.from_string(self.rpc("getLatestBlockhash")["value"]["blockhash"])
        tx = Transaction([payer], Message([ix], payer.pubkey()), blockhash)
        self.rpc("sendTransaction", base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"})
        return True

    def lamports(self, owner: str) -> int:
        """SOL balance of ``owner`` in lamports."""
        return int(self.rpc("getBalance", owner)["value"])
