"""Fault injection for the local node, switchable at runtime and seeded so a failing test replays.

``localnet_setFaults [{"seed": 1, "dropRate": 0.0, "loseResponseRate": 0.0, "latencyMs": 0,
"httpErrorRate": 0.0, "httpErrorMethods": [], "lagSlots": 0, "partialWithdrawRatio": null,
"endpoints": {}}]`` — all keys optional, ``{}`` clears:

* ``dropRate``: sendTransaction answers the signature but the transaction never lands;
  ``dropPrograms`` (a list of program ids) limits drops to transactions invoking one of them
  (e.g. only token transfers, not Drift settles), for tests that target one step;
* ``loseResponseRate``: the transaction lands but the HTTP connection closes with no response;
* ``latencyMs``: every standard call waits this long before it is served;
* ``httpErrorRate``: that share of standard calls is answered HTTP 429 or 503 (half each);
  ``httpErrorMethods`` (method names) limits it to requests calling one of them (a provider
  that rate-limits ``getSignatureStatuses`` only);
* ``lagSlots``: a replica that many slots behind: slots, block heights, blockhashes, signature
  statuses, transactions and address histories are answered as of the slot ``lagSlots`` ago,
  under that older ``context.slot`` (``minContextSlot`` above it is error -32016);
* ``partialWithdrawRatio``: the next Drift withdraws deliver floor(amount × ratio) (the node sets
  the depositor's USDC above that aside while each runs, so Drift's reduce-only withdraw clamps);
* ``endpoints``: ``{name: {"latencyMs", "httpErrorRate", "httpErrorMethods", "lagSlots"}}``:
  requests served by the HTTP server of that name (``RpcHttpServer(name=...)``: the node's own
  is ``"primary"``, a second one over the same node e.g. ``"replica"``) use these four settings
  instead of the top-level ones; two URLs in front of one node can so answer at different
  heights and fail differently.

``localnet_*`` calls themselves are never faulted, so tests keep control of the node.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

#: Settings a server of the node may have of its own (``endpoints``): what one URL answers.
_VIEW_KEYS = {"latencyMs", "httpErrorRate", "httpErrorMethods", "lagSlots"}
_KEYS = {
    "seed",
    "dropRate",
    "dropPrograms",
    "loseResponseRate",
    "partialWithdrawRatio",
    "endpoints",
} | _VIEW_KEYS
MAX_LAG_SLOTS = 1_000_000


def _rate(config: dict[str, Any], key: str) -> float:
    value = config.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{key} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _int(config: dict[str, Any], key: str, hi: int) -> int:
    value = config.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
        raise ValueError(f"{key} must be an integer between 0 and {hi}")
    return value


def _names(config: dict[str, Any], key: str, what: str) -> frozenset[str]:
    value = config.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of {what}")
    return frozenset(value)


@dataclass(frozen=True)
class View:
    """What one HTTP server of the node answers: ``latency_ms`` before each standard call,
    ``http_error_rate`` of them answered 429/503 (only requests calling one of
    ``http_error_methods`` when that is not empty), and ``lag_slots`` behind the node."""

    latency_ms: int = 0
    http_error_rate: float = 0.0
    http_error_methods: frozenset[str] = frozenset()
    lag_slots: int = 0

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> View:
        """Validate the view keys of ``config``; raises ``ValueError`` naming the bad key."""
        return cls(
            latency_ms=_int(config, "latencyMs", 60_000),
            http_error_rate=_rate(config, "httpErrorRate"),
            http_error_methods=_names(config, "httpErrorMethods", "method names"),
            lag_slots=_int(config, "lagSlots", MAX_LAG_SLOTS),
        )

    def to_json(self) -> dict[str, Any]:
        """The view in ``localnet_setFaults`` form."""
        return {
            "latencyMs": self.latency_ms,
            "httpErrorRate": self.http_error_rate,
            "httpErrorMethods": sorted(self.http_error_methods),
            "lagSlots": self.lag_slots,
        }


@dataclass
class Faults:
    """The node's current fault settings and the seeded random source that drives them.

    ``view`` holds the settings of every server without an entry in ``endpoints`` (server name
    to ``View``); ``view_for(name)`` picks."""

    seed: int = 0
    drop_rate: float = 0.0
    lose_response_rate: float = 0.0
    view: View = View()
    partial_withdraw_ratio: Fraction | None = None
    drop_programs: frozenset[str] = frozenset()
    endpoints: dict[str, View] = field(default_factory=dict)
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
        endpoints = config.get("endpoints", {})
        if not isinstance(endpoints, dict) or not all(isinstance(v, dict) for v in endpoints.values()):
            raise ValueError("endpoints must be an object {server name: {view settings}}")
        for name, view in endpoints.items():
            if set(view) - _VIEW_KEYS:
                raise ValueError(f"endpoints.{name}: unknown keys {sorted(set(view) - _VIEW_KEYS)}")
        ratio = config.get("partialWithdrawRatio")
        if ratio is not None:
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
                raise ValueError("partialWithdrawRatio must be null or a number between 0 and 1")
            ratio = Fraction(str(ratio))
        return cls(
            seed=seed,
            drop_rate=_rate(config, "dropRate"),
            lose_response_rate=_rate(config, "loseResponseRate"),
            view=View.from_json(config),
            partial_withdraw_ratio=ratio,
            drop_programs=_names(config, "dropPrograms", "program ids (base58)"),
            endpoints={name: View.from_json(view) for name, view in endpoints.items()},
            _rng=random.Random(seed),
        )

    def to_json(self) -> dict[str, Any]:
        """The settings in ``localnet_setFaults`` form."""
        ratio = self.partial_withdraw_ratio
        return {
            "seed": self.seed,
            "dropRate": self.drop_rate,
            "loseResponseRate": self.lose_response_rate,
            **self.view.to_json(),
            "partialWithdrawRatio": None if ratio is None else float(ratio),
            "dropPrograms": sorted(self.drop_programs),
            "endpoints": {name: view.to_json() for name, view in sorted(self.endpoints.items())},
        }

    def view_for(self, server: str) -> View:
        """The view settings of the HTTP server named ``server``."""
        return self.endpoints.get(server, self.view)

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

    def http_error_status(self, view: View, methods: list[str]) -> int | None:
        """429 or 503 for a request (calling ``methods``) chosen to fail under ``view``, else None."""
        if view.http_error_methods and not view.http_error_methods.intersection(methods):
            return None
        if not self.roll(view.http_error_rate):
            return None
        with self._lock:
            return 429 if self._rng.random() < 0.5 else 503

    def partial_amount(self, amount: int) -> int:
        """What a withdraw of ``amount`` base units delivers under the partial-withdraw fault."""
        if self.partial_withdraw_ratio is None:
            return amount
        return (amount * self.partial_withdraw_ratio.numerator) // self.partial_withdraw_ratio.denominator
