"""Drift program constants, PDAs, and an encoder/decoder for the instructions we send.

Source of every rule here: the Anchor IDL that driftpy 0.8.89 ships
(``driftpy/idl/drift.json``, Anchor legacy IDL format, Drift program v2.142.0), and Anchor's
instruction wire format:

* data = 8-byte discriminator ``sha256("global:<snake_case_name>")[:8]`` followed by the
  Borsh encoding of the IDL args in IDL order (integers little-endian, ``bool`` one byte 0/1);
* accounts = the IDL's accounts in IDL order, with the IDL's ``isMut``/``isSigner`` flags,
  followed by any "remaining accounts" (Drift reads oracles/markets from these).

Instruction names are the IDL's camelCase spelling (``"settlePnl"``, ``"withdraw"``), as are
argument names (``"marketIndex"``, ``"amount"``, ``"reduceOnly"``) and account names
(``"state"``, ``"user"``, ``"userStats"``, ``"spotMarketVault"``, ...).

Builders and :func:`decode_instruction` round-trip; the local node decodes what the gateway
sends with :func:`decode_instruction`. Only ``settlePnl`` and ``withdraw`` are supported.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.token import ID as TOKEN_PROGRAM_ID

__all__ = [
    "DRIFT_PROGRAM_ID",
    "TOKEN_PROGRAM_ID",
    "SETTLE_PNL",
    "WITHDRAW",
    "SUPPORTED_INSTRUCTIONS",
    "DecodedDriftInstruction",
    "load_idl",
    "error_code",
    "error_name",
    "discriminator",
    "state_pda",
    "user_pda",
    "user_stats_pda",
    "spot_market_vault_pda",
    "drift_signer_pda",
    "build_settle_pnl_ix",
    "build_withdraw_ix",
    "decode_instruction",
]

#: Drift v2 program id (mainnet-beta and devnet), as in ``driftpy.constants.config``.
DRIFT_PROGRAM_ID: Pubkey = Pubkey.from_string("dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH")

#: IDL instruction names supported by the builders and the decoder.
SETTLE_PNL = "settlePnl"
WITHDRAW = "withdraw"
SUPPORTED_INSTRUCTIONS: tuple[str, ...] = (SETTLE_PNL, WITHDRAW)

_U16_MAX = 2**16 - 1

# Borsh fixed-size primitives: IDL type -> (struct format, min, max).
_PRIMITIVES: dict[str, tuple[str, int, int]] = {
    "u8": ("<B", 0, 2**8 - 1),
    "u16": ("<H", 0, 2**16 - 1),
    "u32": ("<I", 0, 2**32 - 1),
    "u64": ("<Q", 0, 2**64 - 1),
    "i8": ("<b", -(2**7), 2**7 - 1),
    "i16": ("<h", -(2**15), 2**15 - 1),
    "i32": ("<i", -(2**31), 2**31 - 1),
    "i64": ("<q", -(2**63), 2**63 - 1),
}


@cache
def load_idl() -> dict:
    """Return the Drift IDL shipped with driftpy (``driftpy/idl/drift.json``), parsed and cached.

    Shape: Anchor legacy IDL ``{"version", "name", "instructions", "accounts", "types",
    "events", "errors"}``. Treat the returned dict as read-only (it is shared).
    """
    text = resources.files("driftpy").joinpath("idl", "drift.json").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _errors_by_name() -> MappingProxyType:
    return MappingProxyType({e["name"]: int(e["code"]) for e in load_idl()["errors"]})


@cache
def _errors_by_code() -> MappingProxyType:
    return MappingProxyType({int(e["code"]): e["name"] for e in load_idl()["errors"]})


def error_code(name: str) -> int:
    """Return the Anchor custom error code of Drift error ``name`` (IDL ``errors``).

    Example: ``"InsufficientCollateral" -> 6003``, ``"DailyWithdrawLimit" -> 6128``.
    Raises ``KeyError`` if the IDL has no such error.
    """
    return _errors_by_name()[name]


def error_name(code: int) -> str | None:
    """Return the IDL name of Drift custom error ``code`` (e.g. 6003), or ``None`` if unknown."""
    return _errors_by_code().get(code)


def _snake_case(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def discriminator(ix_name: str) -> bytes:
    """Return the 8-byte Anchor discriminator of IDL instruction ``ix_name`` (camelCase).

    ``sha256(b"global:" + snake_case(ix_name))[:8]`` (Anchor's rule). Does not check the IDL.
    """
    return hashlib.sha256(f"global:{_snake_case(ix_name)}".encode()).digest()[:8]


@dataclass(frozen=True)
class _IxSpec:
    name: str
    discriminator: bytes
    accounts: tuple[tuple[str, bool, bool], ...]  # (name, is_mut, is_signer)
    args: tuple[tuple[str, str], ...]  # (name, borsh primitive or "bool")


@cache
def _spec(ix_name: str) -> _IxSpec:
    for ix in load_idl()["instructions"]:
        if ix["name"] == ix_name:
            accounts = []
            for acc in ix["accounts"]:
                if "accounts" in acc:  # nested account groups: not used by supported ixs
                    raise ValueError(f"nested IDL accounts in {ix_name!r} are not supported")
                accounts.append((acc["name"], bool(acc["isMut"]), bool(acc["isSigner"])))
            args = []
            for arg in ix["args"]:
                if not isinstance(arg["type"], str) or (
                    arg["type"] not in _PRIMITIVES and arg["type"] != "bool"
                ):
                    raise ValueError(f"IDL arg type {arg['type']!r} of {ix_name!r} not supported")
                args.append((arg["name"], arg["type"]))
            return _IxSpec(ix_name, discriminator(ix_name), tuple(accounts), tuple(args))
    raise KeyError(ix_name)


@cache
def _name_by_discriminator() -> MappingProxyType:
    return MappingProxyType(
        {discriminator(ix["name"]): ix["name"] for ix in load_idl()["instructions"]}
    )


def _encode_args(spec: _IxSpec, values: dict[str, int | bool]) -> bytes:
    out = bytearray(spec.discriminator)
    for name, typ in spec.args:
        value = values[name]
        if typ == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{spec.name}.{name} must be a bool, got {value!r}")
            out += b"\x01" if value else b"\x00"
            continue
        fmt, lo, hi = _PRIMITIVES[typ]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{spec.name}.{name} must be an int ({typ}), got {value!r}")
        if not lo <= value <= hi:
            raise ValueError(f"{spec.name}.{name}={value} is outside {typ} range [{lo}, {hi}]")
        out += struct.pack(fmt, value)
    return bytes(out)


def _decode_args(spec: _IxSpec, data: bytes) -> dict[str, int | bool]:
    offset = len(spec.discriminator)
    args: dict[str, int | bool] = {}
    for name, typ in spec.args:
        if typ == "bool":
            if offset + 1 > len(data):
                raise ValueError(f"{spec.name} data too short: missing {name} (bool)")
            raw = data[offset]
            if raw not in (0, 1):
                raise ValueError(f"{spec.name}.{name}: invalid Borsh bool byte {raw}")
            args[name] = raw == 1
            offset += 1
            continue
        fmt = _PRIMITIVES[typ][0]
        size = struct.calcsize(fmt)
        if offset + size > len(data):
            raise ValueError(f"{spec.name} data too short: missing {name} ({typ})")
        (args[name],) = struct.unpack_from(fmt, data, offset)
        offset += size
    if offset != len(data):
        raise ValueError(
            f"{spec.name} data has {len(data) - offset} trailing bytes (expected {offset} bytes)"
        )
    return args


def _build(
    spec: _IxSpec,
    keys: dict[str, Pubkey],
    args: dict[str, int | bool],
    remaining_accounts: Sequence[AccountMeta],
) -> Instruction:
    metas = [
        AccountMeta(pubkey=keys[name], is_signer=is_signer, is_writable=is_mut)
        for name, is_mut, is_signer in spec.accounts
    ]
    metas.extend(remaining_accounts)
    return Instruction(DRIFT_PROGRAM_ID, _encode_args(spec, args), metas)


def _check_u16(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U16_MAX:
        raise ValueError(f"{what} must be an int in 0..{_U16_MAX}, got {value!r}")


# --- PDAs (seeds as in driftpy.addresses and the Drift program) -----------------------------


@cache
def state_pda() -> Pubkey:
    """Drift ``State`` account: PDA of seeds ``[b"drift_state"]``."""
    return Pubkey.find_program_address([b"drift_state"], DRIFT_PROGRAM_ID)[0]


@cache
def user_pda(authority: Pubkey, subaccount_id: int) -> Pubkey:
    """Drift ``User`` (subaccount): seeds ``[b"user", authority, subaccount_id as u16 LE]``.

    Raises ``ValueError`` if ``subaccount_id`` is not in 0..65535.
    """
    _check_u16("subaccount_id", subaccount_id)
    return Pubkey.find_program_address(
        [b"user", bytes(authority), subaccount_id.to_bytes(2, "little")], DRIFT_PROGRAM_ID
    )[0]


@cache
def user_stats_pda(authority: Pubkey) -> Pubkey:
    """Drift ``UserStats``: seeds ``[b"user_stats", authority]``."""
    return Pubkey.find_program_address([b"user_stats", bytes(authority)], DRIFT_PROGRAM_ID)[0]


@cache
def spot_market_vault_pda(market_index: int) -> Pubkey:
    """Token vault of a spot market: seeds ``[b"spot_market_vault", market_index as u16 LE]``.

    Raises ``ValueError`` if ``market_index`` is not in 0..65535.
    """
    _check_u16("market_index", market_index)
    return Pubkey.find_program_address(
        [b"spot_market_vault", market_index.to_bytes(2, "little")], DRIFT_PROGRAM_ID
    )[0]


@cache
def drift_signer_pda() -> Pubkey:
    """Drift's vault authority: seeds ``[b"drift_signer"]``."""
    return Pubkey.find_program_address([b"drift_signer"], DRIFT_PROGRAM_ID)[0]


# --- builders ----------------------------------------------------------------------------


def build_settle_pnl_ix(
    authority: Pubkey,
    subaccount_id: int,
    perp_market_index: int,
    spot_market_index: int = 0,
    remaining_accounts: Sequence[AccountMeta] = (),
) -> Instruction:
    """Build Drift ``settlePnl`` for one perp market of ``authority``'s subaccount.

    Accounts (IDL order): ``state``, ``user`` (writable), ``authority`` (signer),
    ``spotMarketVault`` (of ``spot_market_index``, the quote market, 0 = USDC); then
    ``remaining_accounts`` (oracles, spot/perp markets Drift needs; the caller supplies them).
    Data: discriminator + ``marketIndex: u16`` (= ``perp_market_index``).
    Raises ``ValueError`` if an index is outside 0..65535.
    """
    _check_u16("subaccount_id", subaccount_id)
    _check_u16("perp_market_index", perp_market_index)
    _check_u16("spot_market_index", spot_market_index)
    keys = {
        "state": state_pda(),
        "user": user_pda(authority, subaccount_id),
        "authority": authority,
        "spotMarketVault": spot_market_vault_pda(spot_market_index),
    }
    return _build(_spec(SETTLE_PNL), keys, {"marketIndex": perp_market_index}, remaining_accounts)


def build_withdraw_ix(
    authority: Pubkey,
    subaccount_id: int,
    spot_market_index: int,
    amount: int,
    reduce_only: bool,
    user_token_account: Pubkey,
    remaining_accounts: Sequence[AccountMeta] = (),
) -> Instruction:
    """Build Drift ``withdraw`` of ``amount`` token base units (USDC: 6 decimals) to a token account.

    Accounts (IDL order): ``state``, ``user`` (w), ``userStats`` (w), ``authority`` (signer),
    ``spotMarketVault`` (w), ``driftSigner``, ``userTokenAccount`` (w), ``tokenProgram``
    (SPL Token); then ``remaining_accounts``.
    Data: discriminator + ``marketIndex: u16`` + ``amount: u64`` + ``reduceOnly: bool``.
    ``reduce_only=True`` asks Drift not to borrow: it withdraws at most the deposit.
    Raises ``ValueError`` if ``amount`` is not an int in 0..2**64-1, an index is outside
    0..65535, or ``reduce_only`` is not a bool.
    """
    _check_u16("subaccount_id", subaccount_id)
    _check_u16("spot_market_index", spot_market_index)
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < 2**64:
        raise ValueError(f"amount must be an int in 0..2**64-1 (token base units), got {amount!r}")
    if not isinstance(reduce_only, bool):
        raise ValueError(f"reduce_only must be a bool, got {reduce_only!r}")
    keys = {
        "state": state_pda(),
        "user": user_pda(authority, subaccount_id),
        "userStats": user_stats_pda(authority),
        "authority": authority,
        "spotMarketVault": spot_market_vault_pda(spot_market_index),
        "driftSigner": drift_signer_pda(),
        "userTokenAccount": user_token_account,
        "tokenProgram": TOKEN_PROGRAM_ID,
    }
    args = {"marketIndex": spot_market_index, "amount": amount, "reduceOnly": reduce_only}
    return _build(_spec(WITHDRAW), keys, args, remaining_accounts)


# --- decoder ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedDriftInstruction:
    """A decoded Drift instruction.

    * ``name``: IDL instruction name, camelCase: ``"settlePnl"`` or ``"withdraw"``.
    * ``args``: IDL arg name -> value, e.g. ``{"marketIndex": 0, "amount": 5_000_000,
      "reduceOnly": True}`` (amount in token base units).
    * ``accounts``: IDL account name -> key, in IDL order; remaining accounts are not included.
    """

    name: str
    args: dict[str, int | bool]
    accounts: dict[str, Pubkey]


def decode_instruction(data: bytes, account_keys: Sequence[Pubkey]) -> DecodedDriftInstruction:
    """Decode the data and accounts of one Drift instruction (``settlePnl`` or ``withdraw``).

    ``data``: the instruction data; ``account_keys``: the instruction's account keys in order
    (extra keys beyond the IDL's accounts are remaining accounts and are ignored).
    The program id is not checked here: the caller decides the instruction is Drift's.
    Raises ``ValueError`` on: data shorter than 8 bytes, a discriminator not in the IDL, an IDL
    instruction other than settlePnl/withdraw ("unsupported Drift instruction ..."), args too
    short / trailing bytes / a bool byte other than 0 or 1, fewer account keys than the IDL needs.
    """
    data = bytes(data)
    if len(data) < 8:
        raise ValueError(f"Drift instruction data too short: {len(data)} bytes, need >= 8")
    name = _name_by_discriminator().get(data[:8])
    if name is None:
        raise ValueError(f"unknown Drift instruction discriminator {data[:8].hex()}")
    if name not in SUPPORTED_INSTRUCTIONS:
        raise ValueError(
            f"unsupported Drift instruction {name!r} (supported: {', '.join(SUPPORTED_INSTRUCTIONS)})"
        )
    spec = _spec(name)
    if len(account_keys) < len(spec.accounts):
        raise ValueError(
            f"{name} needs {len(spec.accounts)} accounts "
            f"({', '.join(a[0] for a in spec.accounts)}), got {len(account_keys)}"
        )
    args = _decode_args(spec, data)
    accounts = {acc[0]: account_keys[i] for i, acc in enumerate(spec.accounts)}
    return DecodedDriftInstruction(name=name, args=args, accounts=accounts)
