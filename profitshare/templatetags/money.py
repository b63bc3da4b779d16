"""Display filters for money and chain data. Amounts are integers in USDC base units (6
decimals) everywhere; they become text here only, through ``Decimal`` (never float)."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.conf import settings

register = template.Library()

USDC_DECIMALS = 6
SOL_DECIMALS = 9  # 1 SOL = 10^9 lamports


def format_usdc(base_units, *, grouping: bool = True) -> str:
    """``1234567890`` → ``"1,234.567890"`` (``grouping=False``: ``"1234.567890"``). ``None``
    and ``""`` become ``"—"``. Exact: integer base units scaled with ``Decimal``."""
    if base_units is None or base_units == "":
        return "—"
    value = Decimal(int(base_units)).scaleb(-USDC_DECIMALS)
    return f"{value:,.{USDC_DECIMALS}f}" if grouping else f"{value:.{USDC_DECIMALS}f}"


def format_sol(lamports) -> str:
    """Lamports as SOL: ``2_039_280`` → ``"0.002039280"``; ``None`` and ``""`` become ``"—"``.
    Exact (``Decimal``)."""
    if lamports is None or lamports == "":
        return "—"
    return f"{Decimal(int(lamports)).scaleb(-SOL_DECIMALS):,.{SOL_DECIMALS}f}"


def format_bps(bps) -> str:
    """Basis points as a percent: ``1000`` → ``"10.00 %"``, ``25`` → ``"0.25 %"``."""
    if bps is None or bps == "":
        return "—"
    return f"{Decimal(int(bps)).scaleb(-2):.2f} %"


def explorer_url(signature: str) -> str:
    """The explorer URL of a transaction signature (``settings.QV_EXPLORER_TX_URL``)."""
    return settings.QV_EXPLORER_TX_URL.replace("{signature}", signature)


@register.filter(name="usdc")
def usdc(base_units) -> str:
    """Template filter: USDC base units as ``1,234.567890``."""
    return format_usdc(base_units)


@register.filter(name="sol")
def sol(lamports) -> str:
    """Template filter: lamports as SOL with nine decimals."""
    return format_sol(lamports)


@register.filter(name="bps")
def bps(value) -> str:
    """Template filter: basis points as a percent with two decimals."""
    return format_bps(value)


@register.filter(name="explorer")
def explorer(signature: str) -> str:
    """Template filter: the explorer URL of a signature."""
    return explorer_url(signature)


@register.filter(name="shortsig")
def shortsig(signature: str) -> str:
    """Template filter: a signature shortened for tables (``5xYz…AbCd``)."""
    if not signature:
        return ""
    return f"{signature[:6]}…{signature[-4:]}" if len(signature) > 12 else signature
