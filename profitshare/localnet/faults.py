"""Fault injection for the local node, switchable at runtime and seeded so a failing test replays.

``localnet_setFaults [{"seed": 1, "dropRate": 0.0, "loseResponseRate": 0.0, "latencyMs": 0,
"httpErrorRate": 0.0, "partialWithdrawRatio": null}]`` — all keys optional, ``{}`` clears:

* ``dropRate``: sendTransaction answers the signature but the transaction never lands;
  ``dropPrograms`` (a list of program ids) limits drops to transactions invoking one of them
  (e.g. only token transfers, not Drift settles), for tests that target one step;
* ``loseResponseRate``: the transaction lands but the HTTP connection closes with no response;
* ``latencyMs``: every standard call waits this long before it is served;
* ``httpErrorRate``: that share of standard calls is answered HTTP 429 or 503 (half each);
* ``partialWithdrawRatio``: the next Drift withdraws deliver floor(amount × ratio) (the node sets
  the depositor's USDC above that aside while each runs, so Drift's reduce-only withdraw clamps).

``localnet_*`` calls themselves are never faulted, so tests keep control of the node.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

_KEYS = {
    "seed",
    "dropRate",
    "dropPrograms",
    "loseResponseRate",
    "latencyMs",
    "httpErrorRate",
    "partialWithdrawRatio",
}


def _rate(config: dict[str, Any], key: str) -> float:
    value = config.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{key} must be a number between 0 and 1, got {value!r}")
    return float(value)


@dataclass
class Faults:
    """The node's current fault settings and the seeded random source that drives them."""

    seed: int = 0
    drop_rate: float = 0.0
    lose_response_rate: float = 0.0
    latency_ms: int = 0
    http_error_rate: float = 0.0
    partial_withdraw_ratio: Fraction | None = None
    drop_programs: frozenset[str] = frozenset()
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> Faults:
        """Validate a ``localnet_setFaults`` object; raises ``ValueError`` naming the bad key."""
        if not isinstance(config, dict):
            raise ValueError("faults must be an object")
        unknown = set(config) - _KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        seed = config.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        latency = config.get("latencyMs", 0)
        if isinstance(latency, bool) or not isinstance(latency, int) or not 0 <= latency <= 60_000:
            raise ValueError("latencyMs must be an integer between 0 and 60000")
        ratio = config.get("partialWithdrawRatio")
        if ratio is not None:
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
                raise ValueError("partialWithdrawRatio must be null or a number between 0 and 1")
            ratio = Fraction(str(ratio))
        programs = config.get("dropPrograms", [])
        if not isinstance(programs, list) or not all(isinstance(p, str) for p in programs):
            raise ValueError("dropPrograms must be a list of program ids (base58)")
        return cls(
            seed=seed,
            drop_rate=_rate(config, "dropRate"),
            lose_response_rate=_rate(config, "loseResponseRate"),
            latency_ms=latency,
            http_error_rate=_rate(config, "httpErrorRate"),
            partial_withdraw_ratio=ratio,
            drop_programs=frozenset(programs),
            _rng=random.Random(seed),
        )

    def to_json(self) -> dict[str, Any]:
        """The settings in ``localnet_setFaults`` form."""
        ratio = self.partial_withdraw_ratio
        return {
            "seed": self.seed,
            "dropRate": self.drop_rate,
            "loseResponseRate": self.lose_response_rate,
            "latencyMs": self.latency_ms,
            "httpErrorRate": self.http_error_rate,
            "partialWithdrawRatio": None if ratio is None else float(ratio),
            "dropPrograms": sorted(self.drop_programs),
        }

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``, from the seeded source (thread-safe)."""
        if rate <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def drops(self, program_ids: list[str]) -> bool:
        """Whether to drop a sent transaction invoking ``program_ids`` (seeded)."""
        if self.drop_programs and not self.drop_programs.intersection(program_ids):
            return False
        return self.roll(self.drop_rate)

    def http_error_status(self) -> int | None:
        """429 or 503 for a call chosen to fail, else None."""
        if not self.roll(self.http_error_rate):
            return None
        with self._lock:
            return 429 if self._rng.random() < 0.5 else 503

    def partial_amount(self, amount: int) -> int:
        """What a withdraw of ``amount`` base units delivers under the partial-withdraw fault."""
        if self.partial_withdraw_ratio is None:
            return amount
        return (amount * self.partial_withdraw_ratio.numerator) // self.partial_withdraw_ratio.denominator
