"""How amounts become text (``profitshare.money``): exact, from integer base units and
lamports, the same for pages, CSV, notices and the demo."""

from __future__ import annotations

import pytest

from profitshare.money import (
    LAMPORTS_PER_SOL,
    USDC,
    explorer_url,
    format_bps,
    format_sol,
    format_usdc,
)


@pytest.mark.parametrize(
    ("base_units", "kwargs", "text"),
    [
        (1_234_567_890, {}, "1,234.567890"),
        (1_234_567_890, {"grouping": False}, "1234.567890"),
        (4 * USDC, {"grouping": False, "trim": True}, "4"),
        (1_234_567, {"grouping": False, "trim": True}, "1.234567"),
        (1_500_000_000, {"trim": True}, "1,500"),
        (1, {}, "0.000001"),
        (-2_500_000, {}, "-2.500000"),
        (None, {}, "—"),
        ("", {}, "—"),
    ],
)
def test_usdc_text_is_exact(base_units, kwargs, text):
    assert format_usdc(base_units, **kwargs) == text


def test_sol_and_bps_text():
    assert format_sol(2_039_280) == "0.002039280"
    assert format_sol(3 * LAMPORTS_PER_SOL) == "3.000000000"
    assert (format_bps(1_000), format_bps(25), format_bps(None)) == ("10.00 %", "0.25 %", "—")


def test_no_float_can_round_a_large_amount():
    """A float has 53 bits: 2**53 + 1 base units would print as …992; ``Decimal`` keeps it."""
    assert format_usdc(2**53 + 1, grouping=False) == "9007199254.740993"


def test_explorer_url_replaces_only_the_signature(settings):
    settings.QV_EXPLORER_TX_URL = "https://explorer.example/tx/{signature}?cluster={custom}"
    assert explorer_url("5abc") == "https://explorer.example/tx/5abc?cluster={custom}"
