"""Byte offsets of Drift account fields, computed from the binary's own IDL (v2.84.0).

World building writes a few Drift fields directly where no authority can sign (an exact realized
PnL, a PnL pool's balance, a withdraw guard). Drift's accounts are zero-copy ``repr(C)`` structs
laid out without implicit padding, so a field's offset is the sum of the sizes before it (Anchor's
8-byte discriminator first), the same layout Borsh reads: ``offset("User",
"perp_positions[2].quote_asset_amount")`` answers where those 8 bytes live.

Field paths use the IDL's names (camelCase in the IDL; snake_case is accepted) with ``[i]`` for
array elements and ``.`` for nested structs. Integers are little-endian, signed per the IDL type.
"""

from __future__ import annotations

import re
from functools import cache

from profitshare.localnet.drift_program import binary_idl

_PRIMITIVE = {
    "bool": 1, "u8": 1, "i8": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4,
    "u64": 8, "i64": 8, "u128": 16, "i128": 16, "publicKey": 32,
}
_STEP = re.compile(r"([A-Za-z_0-9]+)(?:\[(\d+)\])?")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@cache
def _types() -> dict[str, dict]:
    idl = binary_idl()
    return {t["name"]: t["type"] for t in [*idl["types"], *idl["accounts"]]}


def size_of(ty) -> int:
    """Size in bytes of an IDL type (primitive, ``{"array": [T, n]}`` or ``{"defined": name}``)."""
    if isinstance(ty, str):
        return _PRIMITIVE[ty]
    if "array" in ty:
        inner, count = ty["array"]
        return size_of(inner) * count
    if "defined" in ty:
        definition = _types()[ty["defined"]]
        if definition["kind"] == "enum":
            if any(v.get("fields") for v in definition["variants"]):
                raise ValueError(f"enum {ty['defined']} carries data: not in a zero-copy account")
            return 1
        return sum(size_of(field["type"]) for field in definition["fields"])
    raise ValueError(f"unsupported IDL type {ty!r}")


@cache
def field(account: str, path: str) -> tuple[int, str | dict]:
    """``(offset, IDL type)`` of ``path`` in an ``account``'s data (discriminator included).

    Raises ``KeyError`` for an unknown account or field, ``IndexError`` past an array's end.
    """
    offset, ty = 8, {"defined": account}
    for name, index in _STEP.findall(path):
        definition = _types()[ty["defined"]]
        wanted = _camel(name)
        for candidate in definition["fields"]:
            if candidate["name"] == wanted:
                break
            offset += size_of(candidate["type"])
        else:
            raise KeyError(f"{account} has no field {name!r} (in {path!r})")
        ty = candidate["type"]
        if index:
            inner, count = ty["array"]
            if int(index) >= count:
                raise IndexError(f"{path}: {name} has {count} elements")
            offset += size_of(inner) * int(index)
            ty = inner
    return offset, ty


def read_int(data: bytes, account: str, path: str) -> int:
    """The integer at ``path`` (signedness from the IDL type)."""
    offset, ty = field(account, path)
    size = _PRIMITIVE[ty]
    return int.from_bytes(data[offset : offset + size], "little", signed=ty.startswith("i"))


def write_int(data: bytearray, account: str, path: str, value: int) -> None:
    """Write the integer ``value`` at ``path``; raises ``OverflowError`` if it does not fit."""
    offset, ty = field(account, path)
    size = _PRIMITIVE[ty]
    data[offset : offset + size] = int(value).to_bytes(size, "little", signed=ty.startswith("i"))
