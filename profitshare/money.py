"""Money as the product shows it: the USDC and SOL units, amounts as text, and a signature's
explorer link. Amounts are integers everywhere (USDC base units, lamports, basis points); they
become text only here, through ``Decimal``, never float (docs/design.md, "Money is integers").
The template filters (``templatetags/money.py``), notifications and the demo use these."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

USDC_DECIMALS = 6  # the USDC mint's decimals
USDC = 10**USDC_DECIMALS  # base units per USDC
SOL_DECIMALS = 9
LAMPORTS_PER_SOL = 10**SOL_DECIMALS

EMPTY = "—"


def format_usdc(base_units, *, grouping: bool = True, trim: bool = False) -> str:
    """USDC base units as text: ``1234567890`` → ``"1,234.567890"`` (``grouping=False``:
    ``"1234.567890"``; ``trim=True``: no trailing zeros, ``4000000`` → ``"4"``, for sentences).
    ``None`` and ``""`` become ``"—"``. Exact: integer base units scaled with ``Decimal``."""
    if base_units is None or base_units == "":
        return EMPTY
    value = Decimal(int(base_units)).scaleb(-USDC_DECIMALS)
    if trim:
        return format(value.normalize(), ",f" if grouping else "f")
    return f"{value:,.{USDC_DECIMALS}f}" if grouping else f"{value:.{USDC_DECIMALS}f}"


def format_sol(lamports) -> str:
    """Lamports as SOL: ``2_039_280`` → ``"0.002039280"``; ``None`` and ``""`` become ``"—"``.
    Exact (``Decimal``)."""
    if lamports is None or lamports == "":
        return EMPTY
    return f"{Decimal(int(lamports)).scaleb(-SOL_DECIMALS):,.{SOL_DECIMALS}f}"


def format_bps(bps) -> str:
    """Basis points as a percent: ``1000`` → ``"10.00 %"``, ``25`` → ``"0.25 %"``."""
    if bps is None or bps == "":
        return EMPTY
    return f"{Decimal(int(bps)).scaleb(-2):.2f} %"


def explorer_url(signature: str) -> str:
    """The explorer URL of a transaction signature: ``settings.QV_EXPLORER_TX_URL`` with its
    ``{signature}`` placeholder replaced (any other braces in the URL are kept as they are)."""
    return settings.QV_EXPLORER_TX_URL.replace("{signature}", signature)
