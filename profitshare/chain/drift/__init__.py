"""Drift Protocol access: program constants, PDAs, instruction codec, and the driftpy adapter.

See :mod:`profitshare.chain.drift.program` (offline, IDL-driven) and
:mod:`profitshare.chain.drift.driftpy_adapter` (real clusters, via driftpy).
"""
