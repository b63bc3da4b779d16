"""Share arithmetic: integers only, every rounding a floor in the subscriber's favour.

* ``per_trade`` (the default): each profitable close owes
  ``floor(realized_pnl × bps / 10 000)``; a loss owes nothing and is not carried.
* ``high_water_mark`` (drift-vaults; Binance/Bybit copy trading): a subscription owes only on
  cumulative realized PnL above its previous peak; losses carry forward and nothing is clawed
  back. At 1,000 bps, closes of +200, −150, +100, +150 owe 20, 0, 0, 10.
"""

from __future__ import annotations

from dataclasses import dataclass

BPS_DENOMINATOR = 10_000
MAX_BPS = 1_000


def _check_bps(bps: int) -> None:
    if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= MAX_BPS:
        raise ValueError(f"bps must be an int in 0..{MAX_BPS}, got {bps!r}")


def per_trade_share(realized_pnl: int, bps: int) -> int:
    """Share of one close in USDC base units: ``floor(pnl × bps / 10 000)``, 0 for pnl <= 0."""
    _check_bps(bps)
    if realized_pnl <= 0:
        return 0
    return realized_pnl * bps // BPS_DENOMINATOR


@dataclass(frozen=True)
class HighWaterMarkStep:
    """Result of one close under the high-water mark: the ``share`` owed and the new state."""

    share: int
    cumulative_pnl: int
    high_water_mark: int


def high_water_mark_step(cumulative_pnl: int, high_water_mark: int, realized_pnl: int, bps: int) -> HighWaterMarkStep:
    """Apply one close to (cumulative PnL, peak); owe bps of the part above the old peak."""
    _check_bps(bps)
    cumulative = cumulative_pnl + realized_pnl
    if cumulative <= high_water_mark:
        return HighWaterMarkStep(0, cumulative, high_water_mark)
    excess = cumulative - high_water_mark
    return HighWaterMarkStep(excess * bps // BPS_DENOMINATOR, cumulative, cumulative)
