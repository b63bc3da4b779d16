"""Share arithmetic: floors in the subscriber's favour; the high-water mark."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profitshare.services.policy import high_water_mark_step, per_trade_share


def test_per_trade_floors_in_the_subscribers_favour():
    assert per_trade_share(1_000_000, 1_000) == 100_000
    assert per_trade_share(999, 1_000) == 99  # 99.9 floors to 99
    assert per_trade_share(1, 999) == 0
    assert per_trade_share(0, 1_000) == 0
    assert per_trade_share(-5_000_000, 1_000) == 0
    assert per_trade_share(10**18, 1_000) == 10**17  # no float overflow or rounding


def test_high_water_mark_example_from_the_issue():
    cumulative, peak, shares = 0, 0, []
    for pnl in (200, -150, 100, 150):
        step = high_water_mark_step(cumulative, peak, pnl, 1_000)
        cumulative, peak = step.cumulative_pnl, step.high_water_mark
        shares.append(step.share)
    assert shares == [20, 0, 0, 10]
    assert (cumulative, peak) == (300, 300)


@pytest.mark.parametrize("bps", [-1, 1_001, 5.0, True])
def test_bps_outside_0_to_1000_is_refused(bps):
    with pytest.raises(ValueError, match="bps"):
        per_trade_share(100, bps)
    with pytest.raises(ValueError, match="bps"):
        high_water_mark_step(0, 0, 100, bps)


@given(st.lists(st.integers(min_value=-10**9, max_value=10**9), max_size=40), st.integers(0, 1_000))
def test_high_water_mark_never_owes_more_than_bps_of_the_final_peak(pnls, bps):
    cumulative, peak, total = 0, 0, 0
    for pnl in pnls:
        step = high_water_mark_step(cumulative, peak, pnl, bps)
        assert step.share >= 0
        cumulative, peak, total = step.cumulative_pnl, step.high_water_mark, total + step.share
    assert total <= peak * bps // 10_000
    assert peak >= max(0, cumulative)
