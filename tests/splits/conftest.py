"""Fixtures of the split-payout tests."""

from tests.splits.legs import splits

__all__ = ["splits"]
