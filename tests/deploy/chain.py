"""Reading payouts back from the local node, independently of the engine: JSON-RPC calls, the
USDC a wallet holds, and what each transaction moved into it (getTransaction's token balances)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


class Rpc:
    """Minimal JSON-RPC client: ``call(method, *params)`` returns ``result`` or raises."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def call(self, method: str, *params: Any) -> Any:
        body = self.http.post("/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def usdc_ata(self, owner: str) -> str:
        return str(get_associated_token_address(Pubkey.from_string(owner), Pubkey.from_string(USDC_MINT)))

    def usdc_balance(self, owner: str) -> int | None:
        """Base units in ``owner``'s USDC token account; None when it does not exist."""
        ata = self.usdc_ata(owner)
        if self.call("getAccountInfo", ata, {"encoding": "base64"})["value"] is None:
            return None
        return int(self.call("getTokenAccountBalance", ata)["value"]["amount"])

    def transaction(self, signature: str) -> dict:
        tx = self.call("getTransaction", signature, {"encoding": "json", "maxSupportedTransactionVersion": 0})
        assert tx is not None, f"{signature} is not on chain"
        return tx

    def received(self, signature: str, owner: str) -> int:
        """USDC base units ``owner``'s token accounts gained in transaction ``signature``."""
        meta = self.transaction(signature)["meta"]
        assert meta["err"] is None, f"{signature} failed: {meta['err']}"

        def total(entries):
            return sum(int(e["uiTokenAmount"]["amount"]) for e in entries or []
                       if e.get("owner") == owner and e.get("mint") == USDC_MINT)

        return total(meta["postTokenBalances"]) - total(meta["preTokenBalances"])

    def deposits(self, owner: str) -> dict[str, int]:
        """Every transaction that moved USDC into ``owner``'s token account: signature -> base
        units (from getSignaturesForAddress on the token account, then getTransaction)."""
        entries = self.call("getSignaturesForAddress", self.usdc_ata(owner), {"limit": 1000})
        moved = {e["signature"]: self.received(e["signature"], owner) for e in entries if e.get("err") is None}
        return {sig: amount for sig, amount in moved.items() if amount}


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    """The trading platform's headers, computed here independently of the app."""
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-QV-Timestamp": ts, "X-QV-Signature": digest, "Content-Type": "application/json"}


def post(http: httpx.Client, secret: str, path: str, payload: dict) -> httpx.Response:
    """A signed POST of ``payload`` (JSON) to the intake API."""
    raw = json.dumps(payload).encode()
    return http.post(path, content=raw, headers=signed_headers(secret, raw))
