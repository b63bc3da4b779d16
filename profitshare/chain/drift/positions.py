"""The positions of a Drift ``User`` account, read straight from its bytes.

Building settle and withdraw instructions needs only which spot and perp markets a user holds
positions in (driftpy's remaining-account rules read ``market_index``, balances, open orders and
LP shares). Decoding a whole ``User`` (4,376 bytes, 32 orders) with anchorpy costs ~10 ms of CPU
per payout step; reading the two position arrays at their offsets costs microseconds. Offsets come
from driftpy's IDL, the layout the product decodes with (Drift's zero-copy accounts are laid out
without padding, in IDL order, after Anchor's 8-byte discriminator); a test checks every field
against anchorpy's full decode.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import driftpy

__all__ = ["PerpPositionView", "SpotPositionView", "UserPositions", "read_positions"]

_SIZES = {"bool": 1, "u8": 1, "i8": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4, "u64": 8, "i64": 8,
          "u128": 16, "i128": 16, "publicKey": 32}
_FORMATS = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "u64": "Q", "i64": "q"}
_SPOT_FIELDS = ("scaledBalance", "openBids", "openAsks", "marketIndex", "balanceType", "openOrders")
_PERP_FIELDS = ("baseAssetAmount", "quoteAssetAmount", "quoteEntryAmount", "lpShares", "marketIndex", "openOrders")


@dataclass(frozen=True)
class SpotPositionView:
    """A spot position: ``scaled_balance`` (Drift's scaled units), ``open_bids``/``open_asks``
    (base units), ``market_index``, ``balance_type`` (0 deposit, 1 borrow), ``open_orders``."""

    scaled_balance: int
    open_bids: int
    open_asks: int
    market_index: int
    balance_type: int
    open_orders: int


@dataclass(frozen=True)
class PerpPositionView:
    """A perp position: ``base_asset_amount`` (AMM_RESERVE_PRECISION), ``quote_asset_amount`` and
    ``quote_entry_amount`` (USDC base units), ``lp_shares``, ``market_index``, ``open_orders``."""

    base_asset_amount: int
    quote_asset_amount: int
    quote_entry_amount: int
    lp_shares: int
    market_index: int
    open_orders: int


@dataclass(frozen=True)
class UserPositions:
    """What the instruction builders read of a ``User``: its 8 spot and 8 perp positions."""

    spot_positions: tuple[SpotPositionView, ...]
    perp_positions: tuple[PerpPositionView, ...]


@cache
def _idl_types() -> dict[str, dict]:
    idl = json.loads((Path(next(iter(driftpy.__path__))) / "idl" / "drift.json").read_text())
    return {t["name"]: t["type"] for t in [*idl["types"], *idl["accounts"]]}


def _size(ty) -> int:
    if isinstance(ty, str):
        return _SIZES[ty]
    if "array" in ty:
        return _size(ty["array"][0]) * ty["array"][1]
    definition = _idl_types()[ty["defined"]]
    if definition["kind"] == "enum":
        return 1
    return sum(_size(f["type"]) for f in definition["fields"])


def _fields(struct_name: str, wanted: tuple[str, ...]) -> tuple[struct.Struct, tuple[int, ...], int]:
    """A ``struct`` reading ``wanted`` fields of an IDL struct: (reader, offsets, struct size)."""
    offsets, formats, offset = {}, {}, 0
    for f in _idl_types()[struct_name]["fields"]:
        if f["name"] in wanted:
            ty = f["type"] if isinstance(f["type"], str) else "u8"  # an enum: its u8 tag
            offsets[f["name"]], formats[f["name"]] = offset, _FORMATS[ty]
        offset += _size(f["type"])
    reader = struct.Struct("<" + "".join(formats[n] for n in wanted))
    return reader, tuple(offsets[n] for n in wanted), offset


@cache
def _layout():
    offset, arrays = 8, {}
    for f in _idl_types()["User"]["fields"]:
        if f["name"] in ("spotPositions", "perpPositions"):
            arrays[f["name"]] = (offset, f["type"]["array"][1])
        offset += _size(f["type"])
    return arrays, _fields("SpotPosition", _SPOT_FIELDS), _fields("PerpPosition", _PERP_FIELDS)


def _read(data: bytes, start: int, count: int, spec, view):
    reader, offsets, size = spec
    out = []
    for n in range(count):
        base = start + n * size
        out.append(view(*(struct.unpack_from("<" + fmt, data, base + at)[0]
                          for fmt, at in zip(reader.format[1:], offsets, strict=True))))
    return tuple(out)


def read_positions(data: bytes) -> UserPositions:
    """The positions of a ``User`` account's raw data (discriminator included).

    Raises ``ValueError`` if the data is shorter than a ``User``."""
    arrays, spot, perp = _layout()
    end = arrays["perpPositions"][0] + arrays["perpPositions"][1] * perp[2]
    if len(data) < end:
        raise ValueError(f"{len(data)} bytes is not a Drift User account")
    return UserPositions(
        spot_positions=_read(data, *arrays["spotPositions"], spot, SpotPositionView),
        perp_positions=_read(data, *arrays["perpPositions"], perp, PerpPositionView),
    )
