"""The one redaction of endpoint URLs (``profitshare.redaction``)."""

from __future__ import annotations

import pytest

from profitshare.redaction import redact_url, redact_urls_in


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8899", "http://127.0.0.1:8899"),
        ("http://127.0.0.1:8899/", "http://127.0.0.1:8899/"),
        ("https://mainnet.rpc.example/?api-key=k", "https://mainnet.rpc.example/?…"),
        ("https://user:pw@rpc.example:8443", "https://rpc.example:8443"),
        ("https://x.solana-mainnet.example/0123token/", "https://x.solana-mainnet.example/…"),
        ("https://solana.example/v2/KEY?x=1#frag", "https://solana.example/…?…"),
        ("http://[::1]:8899/", "http://[::1]:8899/"),
        ("http://host:notaport/", "…"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_urls_inside_text_are_redacted():
    text = "ConnectError on https://u:p@rpc.example/tok/?api-key=k, then 'http://127.0.0.1:9/' (refused)"
    assert redact_urls_in(text) == "ConnectError on https://rpc.example/…?…, then 'http://127.0.0.1:9/' (refused)"
