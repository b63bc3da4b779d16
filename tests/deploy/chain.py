"""Reading payouts back from the local node, independently of the engine: JSON-RPC calls, the
USDC a wallet holds, and what each transaction moved into it (getTransaction's token balances)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from profitshare.api.auth import signed_headers

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


def post(http: httpx.Client, secret: str, path: str, payload: dict) -> httpx.Response:
    """A signed POST of ``payload`` (JSON) to the intake API (signature v2 over the path as
    httpx sends it)."""
    raw = json.dumps(payload).encode()
    request = http.build_request("POST", path, content=raw, headers={"Content-Type": "application/json"})
    request.headers.update(signed_headers(secret, "POST", request.url.raw_path.decode("ascii"), raw))
    return http.send(request)
