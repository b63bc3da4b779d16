"""The real Drift v2 program on the local node: the vendored binary, its IDL and Drift's addresses.

The node runs Drift protocol-v2 v2.84.0 (``programs/``, see ``programs/PROVENANCE.md``) inside the
SVM at the mainnet program id. ``load_into`` refuses a binary whose sha256 is not the recorded one,
so a corrupted or swapped file never runs. Instructions are built with anchorpy from driftpy's IDL
(the same IDL the product's Drift adapter builds with); accounts are decoded the same way.
Addresses (PDAs) are Drift's own seeds, computed by driftpy.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import driftpy
from anchorpy import Program, Provider, Wallet
from anchorpy_core.idl import Idl
from driftpy import addresses
from solders.instruction import AccountMeta
from solders.keypair import Keypair
from solders.pubkey import Pubkey

PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"
DRIFT_SO = PROGRAMS_DIR / "drift-v2.84.0.so"
DRIFT_IDL = PROGRAMS_DIR / "drift-v2.84.0-idl.json"
DRIFT_SO_SHA256 = "080423d7c91f826994124873a62d5e752da51d06159ed010002f8f2f20d4e2a7"
DRIFT_VERSION = "2.84.0"
DRIFT_PROGRAM_ID = Pubkey.from_string("dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH")
QUOTE_SPOT_MARKET_INDEX = 0


class DriftBinaryMismatch(RuntimeError):
    """The vendored Drift binary is missing or its sha256 is not the recorded one."""


@cache
def program_bytes() -> bytes:
    """The verified bytes of the vendored binary. Raises ``DriftBinaryMismatch``."""
    try:
        data = DRIFT_SO.read_bytes()
    except OSError as exc:
        raise DriftBinaryMismatch(f"cannot read the Drift program {DRIFT_SO}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != DRIFT_SO_SHA256:
        raise DriftBinaryMismatch(
            f"{DRIFT_SO} has sha256 {digest}, expected {DRIFT_SO_SHA256} (Drift v{DRIFT_VERSION})"
        )
    return data


def load_into(svm) -> None:
    """Deploy the verified Drift binary into a ``LiteSVM`` at ``DRIFT_PROGRAM_ID`` (~0.2 s)."""
    svm.add_program(DRIFT_PROGRAM_ID, program_bytes())


@cache
def binary_idl() -> dict:
    """The IDL shipped beside the binary (v2.84.0), as JSON: the source of account layouts."""
    return json.loads(DRIFT_IDL.read_text())


class _NoConnection:
    """anchorpy needs a provider; the node only builds instructions and decodes accounts."""

    async def close(self) -> None:  # pragma: no cover - never opened
        return None


@cache
def program() -> Program:
    """An anchorpy ``Program`` on driftpy's IDL, for ``program().instruction[...]`` and
    ``program().coder.accounts.decode(...)`` (no connection is ever used)."""
    idl_path = Path(str(next(iter(driftpy.__path__)))) / "idl" / "drift.json"
    idl = Idl.from_json(idl_path.read_text())
    return Program(idl, DRIFT_PROGRAM_ID, Provider(_NoConnection(), Wallet(Keypair())))


def decode(data: bytes):
    """Decode any Drift account (User, UserStats, SpotMarket, PerpMarket, State, PrelaunchOracle)."""
    return program().coder.accounts.decode(bytes(data))


def state_pda() -> Pubkey:
    """Drift's ``State`` account (seed ``drift_state``)."""
    return addresses.get_state_public_key(DRIFT_PROGRAM_ID)


def signer_pda() -> Pubkey:
    """Drift's signer PDA (seed ``drift_signer``): the vaults' token authority."""
    return addresses.get_drift_client_signer_public_key(DRIFT_PROGRAM_ID)


def user_pda(authority: Pubkey, subaccount_id: int) -> Pubkey:
    """The ``User`` subaccount of ``authority`` (seeds ``user``, authority, u16 id LE)."""
    return addresses.get_user_account_public_key(DRIFT_PROGRAM_ID, authority, subaccount_id)


def user_stats_pda(authority: Pubkey) -> Pubkey:
    """The ``UserStats`` of ``authority`` (seeds ``user_stats``, authority)."""
    return addresses.get_user_stats_account_public_key(DRIFT_PROGRAM_ID, authority)


def spot_market_pda(index: int) -> Pubkey:
    """Spot market ``index`` (0 is USDC)."""
    return addresses.get_spot_market_public_key(DRIFT_PROGRAM_ID, index)


def spot_vault_pda(index: int) -> Pubkey:
    """The token vault of spot market ``index`` (deposits and every pool's tokens)."""
    return addresses.get_spot_market_vault_public_key(DRIFT_PROGRAM_ID, index)


def insurance_vault_pda(index: int) -> Pubkey:
    """The insurance fund vault of spot market ``index``."""
    return addresses.get_insurance_fund_vault_public_key(DRIFT_PROGRAM_ID, index)


def perp_market_pda(index: int) -> Pubkey:
    """Perp market ``index``."""
    return addresses.get_perp_market_public_key(DRIFT_PROGRAM_ID, index)


def prelaunch_oracle_pda(perp_market_index: int) -> Pubkey:
    """The Prelaunch oracle of perp market ``perp_market_index`` (its price the node's admin sets)."""
    return addresses.get_prelaunch_oracle_public_key(DRIFT_PROGRAM_ID, perp_market_index)


def position_empty(position) -> bool:
    """True when a decoded ``PerpPosition`` holds nothing (Drift's ``is_available``)."""
    return (
        position.base_asset_amount == 0
        and position.quote_asset_amount == 0
        and position.open_orders == 0
        and position.lp_shares == 0
    )


def remaining_accounts(user, *, writable_spot=(), writable_perp=()) -> list[AccountMeta]:
    """Drift's remaining accounts for a decoded ``user`` (None: a new user) on the node: the
    Prelaunch oracles, then USDC spot market 0, then the perp markets of every non-empty position
    plus ``writable_perp`` (the order of Drift's ``load_maps``; the traded market and its oracle
    writable). The node has only the USDC spot market and Prelaunch-oracle perp markets."""
    perp = set(writable_perp)
    if user is not None:
        perp |= {p.market_index for p in user.perp_positions if not position_empty(p)}
    oracles = [
        AccountMeta(prelaunch_oracle_pda(i), is_signer=False, is_writable=i in writable_perp)
        for i in sorted(perp)
    ]
    spot = [AccountMeta(spot_market_pda(0), is_signer=False, is_writable=0 in writable_spot)]
    markets = [
        AccountMeta(perp_market_pda(i), is_signer=False, is_writable=i in writable_perp)
        for i in sorted(perp)
    ]
    return [*oracles, *spot, *markets]
