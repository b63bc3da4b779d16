"""Template filters for money and chain data (``{% load money %}``): thin wrappers over
``profitshare.money``, where the units and formats are defined."""

from __future__ import annotations

from django import template

from profitshare.money import explorer_url, format_bps, format_sol, format_usdc

register = template.Library()


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
