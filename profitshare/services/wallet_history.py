"""An agent wallet's transactions, newest first, read from the chain in pages: what
reconciliation and the delinquency watch scan (docs/design.md, "Reconciliation", "Delinquency")."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from profitshare.chain.gateway import ChainGateway


def signatures_since(
    gateway: ChainGateway, address: str, *, until: str = "", stop=None, page: int | None = None
) -> list[dict[str, Any]]:
    """Every ``getSignaturesForAddress`` entry of ``address`` newer than the signature
    ``until`` (all of history when empty), newest first, paged with ``before`` by ``page``
    (default ``QV_CHAIN_SIGNATURE_LIMIT``, at most 1000). ``stop(entry)``: True for the first
    entry too old to matter (it and older ones are not returned). Raises the gateway's
    ``ChainError``."""
    page = min(1000, page or settings.QV_CHAIN_SIGNATURE_LIMIT)
    out: list[dict[str, Any]] = []
    before = None
    while True:
        entries = gateway.signatures_for_address(address, limit=page, before=before, until=until or None)
        for entry in entries:
            if stop is not None and stop(entry):
                return out
            out.append(entry)
        if len(entries) < page:
            return out
        before = entries[-1]["signature"]
