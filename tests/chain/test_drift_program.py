"""Drift program codec and PDAs, checked against driftpy's IDL, anchorpy's coder and driftpy.addresses.

Offline; no database.
"""

import hashlib
import json

import driftpy.addresses as drift_addresses
import pytest
from anchorpy import Idl, InstructionCoder
from driftpy.constants.config import DRIFT_PROGRAM_ID as DRIFTPY_PROGRAM_ID
from solders.instruction import AccountMeta
from solders.pubkey import Pubkey

from profitshare.chain.drift import program

AUTHORITY = Pubkey.from_string("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin")
TOKEN_ACCOUNT = Pubkey.from_string("Gh9ZwEmdLJ8DscKNTkTqPbNwLNNBjuSzaG9Vp2KGtKJr")
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")


def _idl_ix(name):
    return next(ix for ix in program.load_idl()["instructions"] if ix["name"] == name)


@pytest.fixture(scope="module")
def anchor_coder():
    return InstructionCoder(Idl.from_json(json.dumps(program.load_idl())))


def test_program_id_matches_driftpy():
    assert program.DRIFT_PROGRAM_ID == DRIFTPY_PROGRAM_ID
    assert str(program.DRIFT_PROGRAM_ID) == "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH"


def test_idl_is_the_shipped_version_and_cached():
    assert program.load_idl()["version"] == "2.142.0"
    assert program.load_idl() is program.load_idl()


def test_error_codes_from_idl():
    assert program.error_code("InsufficientCollateral") == 6003
    assert program.error_code("DailyWithdrawLimit") == 6128
    assert program.error_name(6003) == "InsufficientCollateral"
    assert program.error_name(6128) == "DailyWithdrawLimit"
    assert program.error_name(1) is None
    with pytest.raises(KeyError):
        program.error_code("NoSuchError")


@pytest.mark.parametrize("name,snake", [("settlePnl", "settle_pnl"), ("withdraw", "withdraw")])
def test_discriminator_is_anchor_sighash(name, snake):
    assert program.discriminator(name) == hashlib.sha256(f"global:{snake}".encode()).digest()[:8]


def test_settle_pnl_matches_idl_accounts_and_args(anchor_coder):
    idl = _idl_ix("settlePnl")
    assert [a["name"] for a in idl["accounts"]] == ["state", "user", "authority", "spotMarketVault"]
    assert idl["args"] == [{"name": "marketIndex", "type": "u16"}]
    ix = program.build_settle_pnl_ix(AUTHORITY, 3, 7)
    assert ix.program_id == program.DRIFT_PROGRAM_ID
    assert len(ix.accounts) == len(idl["accounts"])
    for meta, acc in zip(ix.accounts, idl["accounts"], strict=True):
        assert (meta.is_writable, meta.is_signer) == (acc["isMut"], acc["isSigner"]), acc["name"]
    assert [m.pubkey for m in ix.accounts] == [
        program.state_pda(),
        program.user_pda(AUTHORITY, 3),
        AUTHORITY,
        program.spot_market_vault_pda(0),
    ]
    assert bytes(ix.data) == hashlib.sha256(b"global:settle_pnl").digest()[:8] + (7).to_bytes(
        2, "little"
    )
    assert bytes(ix.data) == anchor_coder.encode("settle_pnl", {"market_index": 7})


def test_withdraw_matches_idl_accounts_and_args(anchor_coder):
    idl = _idl_ix("withdraw")
    assert [a["name"] for a in idl["accounts"]] == [
        "state", "user", "userStats", "authority", "spotMarketVault", "driftSigner",
        "userTokenAccount", "tokenProgram",
    ]  # fmt: skip
    assert idl["args"] == [
        {"name": "marketIndex", "type": "u16"},
        {"name": "amount", "type": "u64"},
        {"name": "reduceOnly", "type": "bool"},
    ]
    ix = program.build_withdraw_ix(AUTHORITY, 2, 0, 5_000_000, True, TOKEN_ACCOUNT)
    assert ix.program_id == program.DRIFT_PROGRAM_ID
    for meta, acc in zip(ix.accounts, idl["accounts"], strict=True):
        assert (meta.is_writable, meta.is_signer) == (acc["isMut"], acc["isSigner"]), acc["name"]
    assert [m.pubkey for m in ix.accounts] == [
        program.state_pda(),
        program.user_pda(AUTHORITY, 2),
        program.user_stats_pda(AUTHORITY),
        AUTHORITY,
        program.spot_market_vault_pda(0),
        program.drift_signer_pda(),
        TOKEN_ACCOUNT,
        TOKEN_PROGRAM,
    ]
    expected = (
        hashlib.sha256(b"global:withdraw").digest()[:8]
        + (0).to_bytes(2, "little")
        + (5_000_000).to_bytes(8, "little")
        + b"\x01"
    )
    assert bytes(ix.data) == expected
    assert bytes(ix.data) == anchor_coder.encode(
        "withdraw", {"market_index": 0, "amount": 5_000_000, "reduce_only": True}
    )


def test_pdas_equal_driftpy_helpers():
    pid = DRIFTPY_PROGRAM_ID
    assert program.state_pda() == drift_addresses.get_state_public_key(pid)
    assert program.drift_signer_pda() == drift_addresses.get_drift_client_signer_public_key(pid)
    assert program.user_stats_pda(AUTHORITY) == drift_addresses.get_user_stats_account_public_key(
        pid, AUTHORITY
    )
    for sub in (0, 1, 255, 256, 65535):
        assert program.user_pda(AUTHORITY, sub) == drift_addresses.get_user_account_public_key(
            pid, AUTHORITY, sub
        )
    for idx in (0, 1, 300):
        assert program.spot_market_vault_pda(
            idx
        ) == drift_addresses.get_spot_market_vault_public_key(pid, idx)


@pytest.mark.parametrize(
    "amount,reduce_only", [(0, False), (1, True), (5_000_000, True), (2**64 - 1, False)]
)
def test_withdraw_round_trip(amount, reduce_only):
    extra = [AccountMeta(Pubkey.new_unique(), is_signer=False, is_writable=False)]
    ix = program.build_withdraw_ix(AUTHORITY, 65535, 1, amount, reduce_only, TOKEN_ACCOUNT, extra)
    assert ix.accounts[-1] == extra[0]
    decoded = program.decode_instruction(bytes(ix.data), [m.pubkey for m in ix.accounts])
    assert decoded.name == "withdraw"
    assert decoded.args == {"marketIndex": 1, "amount": amount, "reduceOnly": reduce_only}
    assert list(decoded.accounts) == [a["name"] for a in _idl_ix("withdraw")["accounts"]]
    assert decoded.accounts["user"] == program.user_pda(AUTHORITY, 65535)
    assert decoded.accounts["authority"] == AUTHORITY
    assert decoded.accounts["userTokenAccount"] == TOKEN_ACCOUNT
    assert decoded.accounts["spotMarketVault"] == program.spot_market_vault_pda(1)


def test_settle_pnl_round_trip(anchor_coder):
    ix = program.build_settle_pnl_ix(AUTHORITY, 0, 65535, spot_market_index=0)
    decoded = program.decode_instruction(bytes(ix.data), [m.pubkey for m in ix.accounts])
    assert decoded == program.DecodedDriftInstruction(
        name="settlePnl",
        args={"marketIndex": 65535},
        accounts={
            "state": program.state_pda(),
            "user": program.user_pda(AUTHORITY, 0),
            "authority": AUTHORITY,
            "spotMarketVault": program.spot_market_vault_pda(0),
        },
    )
    parsed = anchor_coder.parse(bytes(ix.data))
    assert parsed.name == "settle_pnl" and parsed.data.market_index == 65535


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount": -1},
        {"amount": 2**64},
        {"amount": 1.5},
        {"amount": True},
        {"amount": "5"},
        {"subaccount_id": -1},
        {"subaccount_id": 65536},
        {"spot_market_index": 65536},
        {"reduce_only": 1},
    ],
)
def test_withdraw_rejects_bad_input(kwargs):
    args = {
        "authority": AUTHORITY,
        "subaccount_id": 0,
        "spot_market_index": 0,
        "amount": 1,
        "reduce_only": True,
        "user_token_account": TOKEN_ACCOUNT,
    } | kwargs
    with pytest.raises(ValueError):
        program.build_withdraw_ix(**args)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subaccount_id": 65536},
        {"subaccount_id": -1},
        {"perp_market_index": 70000},
        {"perp_market_index": -1},
        {"spot_market_index": 65536},
    ],
)
def test_settle_pnl_rejects_bad_input(kwargs):
    args = {"authority": AUTHORITY, "subaccount_id": 0, "perp_market_index": 0} | kwargs
    with pytest.raises(ValueError):
        program.build_settle_pnl_ix(**args)


@pytest.mark.parametrize("fn", [program.user_pda, program.spot_market_vault_pda])
def test_pda_rejects_out_of_range_index(fn):
    call = (lambda i: fn(AUTHORITY, i)) if fn is program.user_pda else fn
    with pytest.raises(ValueError):
        call(65536)


def _withdraw():
    ix = program.build_withdraw_ix(AUTHORITY, 0, 0, 10, False, TOKEN_ACCOUNT)
    return bytes(ix.data), [m.pubkey for m in ix.accounts]


def test_decode_short_data():
    with pytest.raises(ValueError, match="too short"):
        program.decode_instruction(b"\x01\x02\x03", [])


def test_decode_unknown_discriminator():
    _, keys = _withdraw()
    with pytest.raises(ValueError, match="unknown Drift instruction discriminator"):
        program.decode_instruction(b"\x00" * 8 + b"\x00\x00", keys)


def test_decode_unsupported_instruction():
    data = program.discriminator("deposit") + b"\x00" * 11
    with pytest.raises(ValueError, match="unsupported Drift instruction 'deposit'"):
        program.decode_instruction(data, [Pubkey.new_unique() for _ in range(10)])


def test_decode_truncated_args():
    data, keys = _withdraw()
    with pytest.raises(ValueError, match="too short"):
        program.decode_instruction(data[:-1], keys)
    with pytest.raises(ValueError, match="too short"):
        program.decode_instruction(data[:9], keys)


def test_decode_trailing_bytes():
    data, keys = _withdraw()
    with pytest.raises(ValueError, match="trailing"):
        program.decode_instruction(data + b"\x00", keys)


def test_decode_invalid_bool():
    data, keys = _withdraw()
    with pytest.raises(ValueError, match="bool"):
        program.decode_instruction(data[:-1] + b"\x02", keys)


def test_decode_too_few_accounts():
    data, keys = _withdraw()
    with pytest.raises(ValueError, match="needs 8 accounts"):
        program.decode_instruction(data, keys[:7])
    ix = program.build_settle_pnl_ix(AUTHORITY, 0, 0)
    with pytest.raises(ValueError, match="needs 4 accounts"):
        program.decode_instruction(bytes(ix.data), [])
