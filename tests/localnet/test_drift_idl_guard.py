"""IDL guard: for every Drift instruction and account the project builds or decodes, driftpy's IDL
(what the product builds with) and the IDL of the binary the node runs (v2.84.0) agree.

If driftpy is upgraded, this says whether the node's binary still matches; mainnet runs a newer
Drift than the node, and driftpy's IDL follows mainnet, so a pass also shows the instructions we
use are unchanged between the two versions.
"""

from __future__ import annotations

import json
from pathlib import Path

import driftpy
import pytest

from profitshare.localnet import drift_layout
from profitshare.localnet.drift_program import binary_idl

# What the product builds (settle, withdraw) and what the node and its tests build.
INSTRUCTIONS = [
    "settlePnl", "withdraw", "deposit", "initializeUser", "initializeUserStats", "updateUserDelegate",
    "placeAndTakePerpOrder", "initialize", "initializeSpotMarket", "initializePerpMarket",
    "initializePrelaunchOracle", "updatePrelaunchOracleParams", "updatePerpAuctionDuration",
]
ACCOUNTS = ["User", "UserStats", "SpotMarket", "PerpMarket", "State", "PrelaunchOracle"]
# Known, checked differences of the same width (driftpy's IDL is newer than the binary):
# OrderParams.immediateOrCancel (bool) became bitFlags (u8); an argument was renamed.
SAME_WIDTH_RENAMES = {("OrderParams", "immediateOrCancel"): "bitFlags"}
RENAMED_ARGS = {("placeAndTakePerpOrder", "makerOrderId"): "successCondition"}


def _driftpy_idl() -> dict:
    return json.loads((Path(next(iter(driftpy.__path__))) / "idl" / "drift.json").read_text())


def _types(idl) -> dict[str, dict]:
    return {t["name"]: t["type"] for t in [*idl["types"], *idl["accounts"]]}


def _size(types, ty) -> int:
    if isinstance(ty, str):
        return drift_layout._PRIMITIVE[ty]
    if "array" in ty:
        return _size(types, ty["array"][0]) * ty["array"][1]
    if "option" in ty:
        return 1 + _size(types, ty["option"])
    definition = types[ty["defined"]]
    if definition["kind"] == "enum":
        return 1 + max((sum(_size(types, f["type"]) for f in v.get("fields", []) if isinstance(f, dict)) for v in definition["variants"]), default=0)
    return sum(_size(types, f["type"]) for f in definition["fields"])


def _leaves(types, ty, prefix="", offset=0, out=None) -> dict[str, tuple[int, str]]:
    """Every primitive field under ``ty`` as ``{path: (offset, type)}`` (arrays of structs: their
    first element, the array's size checked by the caller's total size)."""
    out = {} if out is None else out
    if isinstance(ty, str):
        out[prefix] = (offset, ty)
    elif "array" in ty:
        inner, count = ty["array"]
        if isinstance(inner, str):
            out[prefix] = (offset, f"[{inner};{count}]")
        else:
            _leaves(types, inner, f"{prefix}[0]", offset, out)
    elif "option" in ty:
        out[prefix] = (offset, f"option {json.dumps(ty['option'])}")
    else:
        definition = types[ty["defined"]]
        if definition["kind"] == "enum":
            out[prefix] = (offset, "enum " + ",".join(v["name"] for v in definition["variants"][:8]))
        else:
            for f in definition["fields"]:
                _leaves(types, f["type"], f"{prefix}.{f['name']}", offset, out)
                offset += _size(types, f["type"])
    return out


def _agree(ours_types, ours, binary_types, binary, where: str, *, renames=SAME_WIDTH_RENAMES) -> int:
    """Same total size; every leaf both name has the same offset and type (padding excepted).
    Returns how many leaves were compared."""
    assert _size(ours_types, ours) == _size(binary_types, binary), f"{where}: size"
    a, b = _leaves(ours_types, ours), _leaves(binary_types, binary)
    renamed = {f".{new}": f".{old}" for (_, old), new in renames.items()}
    compared = 0
    for path, (offset, ty) in b.items():
        if "padding" in path.lower():
            continue
        mine = a.get(path)
        if mine is None:
            alias = next((path.replace(old, new) for new, old in renamed.items() if old in path), None)
            mine = a.get(alias)
            if mine is not None:
                assert mine[0] == offset, f"{where}{path}: moved"
                compared += 1
            continue
        assert mine[0] == offset, f"{where}{path}: offset {mine[0]} != {offset}"
        assert mine[1] == ty or ty.startswith("enum") and mine[1].startswith(ty[:40]), f"{where}{path}: {mine[1]} != {ty}"
        compared += 1
    return compared


@pytest.mark.parametrize("name", INSTRUCTIONS)
def test_instruction_agrees(name):
    ours, binary = _driftpy_idl(), binary_idl()
    a = next(i for i in ours["instructions"] if i["name"] == name)
    b = next(i for i in binary["instructions"] if i["name"] == name)
    assert [(x["name"], x["isMut"], x["isSigner"]) for x in a["accounts"]] == [
        (x["name"], x["isMut"], x["isSigner"]) for x in b["accounts"]
    ]
    assert len(a["args"]) == len(b["args"])
    for x, y in zip(a["args"], b["args"], strict=True):
        assert x["name"] == y["name"] or RENAMED_ARGS.get((name, y["name"])) == x["name"], (name, x["name"], y["name"])
        ours_leaves = _leaves(_types(ours), x["type"])
        compared = _agree(_types(ours), x["type"], _types(binary), y["type"], f"{name}.{x['name']}")
        assert compared >= len(ours_leaves) - len(SAME_WIDTH_RENAMES), f"{name}.{x['name']}: fields differ"


@pytest.mark.parametrize("name", ACCOUNTS)
def test_account_layout_agrees_where_both_have_the_field(name):
    """Same size; every field the binary's IDL names sits at the same offset with the same type
    in driftpy's (the newer IDL only turned padding into fields, which read as 0 here)."""
    ours, binary = _types(_driftpy_idl()), _types(binary_idl())
    compared = _agree(ours, {"defined": name}, binary, {"defined": name}, name)
    assert compared >= 5


def test_the_layout_offsets_match_driftpys_decoder(localnet):
    """The node's direct writes land where driftpy reads: a field written by offset decodes."""
    from profitshare.localnet import drift_program as dp

    data = bytearray(localnet.node.ledger.get_account(dp.perp_market_pda(0)).data)
    drift_layout.write_int(data, "PerpMarket", "pnl_pool.scaled_balance", 123_456_789)
    drift_layout.write_int(data, "PerpMarket", "number_of_users", 77)
    decoded = dp.decode(bytes(data))
    assert decoded.pnl_pool.scaled_balance == 123_456_789 and decoded.number_of_users == 77
