"""DriftpyAdapter: driftpy-built instructions checked against the IDL and our codec; subaccount
math on accounts crafted to exercise each rule (interest, borrows, funding, liquidation).

Offline, no database: the adapter reads through anything with the ``RpcPool.call`` shape, here a
``LocalRpc`` answering ``getMultipleAccounts`` from a dict of accounts encoded with the Drift IDL's
own account layouts (anchorpy ``AccountsCoder`` built from driftpy's ``drift.json``); any other
method fails the test. The same adapter against the real Drift program on the local node is
tested in ``tests/chain/test_drift_adapter_on_node.py``.
"""

import base64
import dataclasses
import json

import pytest
from anchorpy import Idl
from anchorpy.coder.accounts import AccountsCoder, AccountToSerialize
from driftpy.addresses import get_perp_market_public_key, get_spot_market_public_key
from driftpy.types import MarketStatus, OracleSource, SpotBalanceType, UserStatus
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from profitshare.chain.drift import program
from profitshare.chain.drift.driftpy_adapter import (
    DriftAccountNotFound,
    DriftpyAdapter,
    DriftSubaccountState,
)

USDC_MINT = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
PID = program.DRIFT_PROGRAM_ID
_CODER = AccountsCoder(Idl.from_json(json.dumps(program.load_idl())))


def _blank(name):
    """A zero-filled Drift account of IDL type ``name``, decoded (so every field exists)."""
    return _CODER.decode(_CODER.acc_name_to_discriminator[name] + bytes(10_000))


def _plain(obj):
    # anchorpy encodes dataclasses via dataclasses.asdict, which deep-copies Pubkeys (unpicklable);
    # plain dicts are accepted as is.
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [_plain(x) for x in obj]
    return obj


def _encode(name, obj) -> bytes:
    return _CODER.build(AccountToSerialize(data=_plain(obj), name=name))


class LocalRpc:
    """Answers getAccountInfo from ``self.accounts`` (base58 key -> bytes); logs every request."""

    def __init__(self):
        self.accounts: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []

    def put(self, key: Pubkey, data: bytes) -> None:
        self.accounts[str(key)] = data

    def call(self, method: str, keys, config=None):
        """``getMultipleAccounts`` from ``self.accounts``, as the node would answer it."""
        assert method == "getMultipleAccounts", method
        values = []
        for key in keys:
            self.requests.append(("getAccountInfo", key))
            data = self.accounts.get(key)
            values.append(
                None
                if data is None
                else {
                    "data": [base64.b64encode(data).decode(), "base64"],
                    "executable": False,
                    "lamports": 10_000_000,
                    "owner": str(PID),
                    "rentEpoch": 0,
                    "space": len(data),
                }
            )
        return {"context": {"slot": 42}, "value": values}


@pytest.fixture
def authority():
    return Keypair()


def _spot_market(cumulative_deposit_interest=10**10, cumulative_borrow_interest=10**10):
    m = _blank("SpotMarket")
    m.pubkey = get_spot_market_public_key(PID, 0)
    m.vault = program.spot_market_vault_pda(0)
    m.mint = USDC_MINT
    m.decimals = 6
    m.market_index = 0
    m.cumulative_deposit_interest = cumulative_deposit_interest
    m.cumulative_borrow_interest = cumulative_borrow_interest
    m.oracle_source = OracleSource.QuoteAsset()
    m.status = MarketStatus.Active()
    return m


def _perp_market(index, oracle, source=None, margin_ratio_initial=1000):
    m = _blank("PerpMarket")
    m.pubkey = get_perp_market_public_key(PID, index)
    m.market_index = index
    m.amm.oracle = oracle
    m.amm.oracle_source = source or OracleSource.Prelaunch()
    m.margin_ratio_initial = margin_ratio_initial
    m.status = MarketStatus.Active()
    return m


def _prelaunch_oracle(price, perp_market_index):
    o = _blank("PrelaunchOracle")
    o.price = price
    o.perp_market_index = perp_market_index
    return _encode("PrelaunchOracle", o)


CLOSED_MARKET = 2  # a closed position whose realized PnL is not settled yet
OPEN_MARKET = 5  # an open 1-unit long
ORACLE_2 = Pubkey.from_string("J83w4HKfqxwcq3BEMMkPFSppX3gqekLyLJBexebFVkix")
ORACLE_5 = Pubkey.from_string("H6ARHf6YXhGYeQfUzQNGk6rDNnLBQKrenN712K4AQJEG")


def _world(
    authority: Pubkey,
    *,
    subaccount_id=0,
    scaled_balance=100 * 10**9,
    balance_type=None,
    cumulative_deposit_interest=10**10,
    open_position=False,
    oracle_price=150_000_000,
    status=0,
) -> LocalRpc:
    rpc = LocalRpc()
    user = _blank("User")
    user.authority = authority
    user.sub_account_id = subaccount_id
    user.settled_perp_pnl = 7_000_000
    user.status = status
    sp = user.spot_positions[0]
    sp.market_index = 0
    sp.scaled_balance = scaled_balance
    sp.balance_type = balance_type or SpotBalanceType.Deposit()
    closed = user.perp_positions[0]
    closed.market_index = CLOSED_MARKET
    closed.quote_asset_amount = 12_345_678
    rpc.put(
        _spot_market(cumulative_deposit_interest).pubkey,
        _encode("SpotMarket", _spot_market(cumulative_deposit_interest)),
    )
    rpc.put(
        get_perp_market_public_key(PID, CLOSED_MARKET),
        _encode("PerpMarket", _perp_market(CLOSED_MARKET, ORACLE_2)),
    )
    if open_position:
        pos = user.perp_positions[1]
        pos.market_index = OPEN_MARKET
        pos.base_asset_amount = 10**9  # 1 unit (AMM_RESERVE_PRECISION 1e9)
        pos.quote_asset_amount = -100_000_000  # entered at 100 USDC
        pos.last_cumulative_funding_rate = 10**9
        market = _perp_market(OPEN_MARKET, ORACLE_5)
        market.amm.cumulative_funding_rate_long = 2 * 10**9  # long owes 1e9 * 1e9 / 1e12 = 1 USDC
        rpc.put(market.pubkey, _encode("PerpMarket", market))
        rpc.put(ORACLE_5, _prelaunch_oracle(oracle_price, OPEN_MARKET))
    rpc.put(program.user_pda(authority, subaccount_id), _encode("User", user))
    return rpc


def _idl_accounts(name):
    ix = next(i for i in program.load_idl()["instructions"] if i["name"] == name)
    return ix["accounts"]


def _assert_idl_prefix(ix, name):
    """Program id, and the IDL's accounts (name order, signer/writable flags) at the start."""
    assert ix.program_id == PID
    idl_accounts = _idl_accounts(name)
    assert len(ix.accounts) >= len(idl_accounts)
    for meta, acc in zip(ix.accounts, idl_accounts, strict=False):
        assert (meta.is_writable, meta.is_signer) == (acc["isMut"], acc["isSigner"]), acc["name"]
    assert bytes(ix.data[:8]) == program.discriminator(name)


def test_settle_pnl_built_by_driftpy_matches_idl_and_codec(authority):
    rpc = _world(authority.pubkey(), subaccount_id=3, open_position=True)
    ixs = DriftpyAdapter(rpc).build_settle_pnl_instructions(authority, 3, CLOSED_MARKET)
    assert len(ixs) == 1
    ix = ixs[0]
    _assert_idl_prefix(ix, "settlePnl")
    ours = program.build_settle_pnl_ix(authority.pubkey(), 3, CLOSED_MARKET)
    assert list(ix.accounts[:4]) == list(ours.accounts)
    assert bytes(ix.data) == bytes(ours.data)
    decoded = program.decode_instruction(bytes(ix.data), [m.pubkey for m in ix.accounts])
    assert decoded == program.decode_instruction(
        bytes(ours.data), [m.pubkey for m in ours.accounts]
    )
    assert decoded.args == {"marketIndex": CLOSED_MARKET}
    assert decoded.accounts["user"] == program.user_pda(authority.pubkey(), 3)
    # driftpy's remaining accounts: oracles, then spot markets, then perp markets.
    remaining = {m.pubkey: m.is_writable for m in ix.accounts[4:]}
    assert remaining == {
        ORACLE_2: True,  # driftpy marks a Prelaunch oracle of a writable perp market writable
        ORACLE_5: False,
        get_spot_market_public_key(PID, 0): True,
        get_perp_market_public_key(PID, CLOSED_MARKET): True,
        get_perp_market_public_key(PID, OPEN_MARKET): False,
    }
    assert not any(m.is_signer for m in ix.accounts[4:])


@pytest.mark.parametrize("amount,reduce_only", [(5_000_000, True), (1, False), (2**64 - 1, True)])
def test_withdraw_built_by_driftpy_matches_idl_and_codec(authority, amount, reduce_only):
    rpc = _world(authority.pubkey())
    ata = get_associated_token_address(authority.pubkey(), USDC_MINT)
    rpc.put(ata, bytes(165))  # the token account exists: no create instruction
    ixs = DriftpyAdapter(rpc).build_withdraw_instructions(
        authority, 0, 0, amount, reduce_only, user_token_account=ata
    )
    assert len(ixs) == 1
    ix = ixs[0]
    _assert_idl_prefix(ix, "withdraw")
    ours = program.build_withdraw_ix(authority.pubkey(), 0, 0, amount, reduce_only, ata)
    assert list(ix.accounts[:8]) == list(ours.accounts)
    assert bytes(ix.data) == bytes(ours.data)
    decoded = program.decode_instruction(bytes(ix.data), [m.pubkey for m in ix.accounts])
    assert decoded.name == "withdraw"
    assert decoded.args == {"marketIndex": 0, "amount": amount, "reduceOnly": reduce_only}
    assert decoded.accounts["userTokenAccount"] == ata
    assert decoded.accounts["spotMarketVault"] == program.spot_market_vault_pda(0)
    remaining = {m.pubkey: m.is_writable for m in ix.accounts[8:]}
    assert remaining == {
        ORACLE_2: False,
        get_spot_market_public_key(PID, 0): True,
        get_perp_market_public_key(PID, CLOSED_MARKET): False,
    }
    assert ("getAccountInfo", str(ata)) in rpc.requests


def test_withdraw_prepends_idempotent_ata_creation_when_missing(authority):
    rpc = _world(authority.pubkey())
    ata = get_associated_token_address(authority.pubkey(), USDC_MINT)
    ixs = DriftpyAdapter(rpc).build_withdraw_instructions(
        authority, 0, 0, 2_500_000, user_token_account=ata
    )
    assert len(ixs) == 2
    create, withdraw = ixs
    assert create.program_id == ASSOCIATED_TOKEN_PROGRAM_ID
    assert bytes(create.data) == b"\x01"  # CreateIdempotent (SPL Associated Token Account)
    assert create.accounts[0].pubkey == authority.pubkey() and create.accounts[0].is_signer
    assert create.accounts[1].pubkey == ata
    decoded = program.decode_instruction(
        bytes(withdraw.data), [m.pubkey for m in withdraw.accounts]
    )
    assert decoded.args == {"marketIndex": 0, "amount": 2_500_000, "reduceOnly": True}


def test_withdraw_to_missing_non_ata_is_refused(authority):
    rpc = _world(authority.pubkey())
    with pytest.raises(ValueError, match="associated token account"):
        DriftpyAdapter(rpc).build_withdraw_instructions(
            authority, 0, 0, 1, user_token_account=Pubkey.new_unique()
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount": -1},
        {"amount": 2**64},
        {"amount": True},
        {"amount": 1.0},
        {"subaccount_id": 65536},
        {"spot_market_index": -1},
        {"reduce_only": "yes"},
    ],
)
def test_withdraw_bad_input_is_refused_before_any_rpc(authority, kwargs):
    rpc = _world(authority.pubkey())
    args = {"subaccount_id": 0, "spot_market_index": 0, "amount": 1, "reduce_only": True} | kwargs
    with pytest.raises(ValueError):
        DriftpyAdapter(rpc).build_withdraw_instructions(
            authority, **args, user_token_account=Pubkey.new_unique()
        )
    assert rpc.requests == []


def test_settle_pnl_bad_index_is_refused(authority):
    rpc = _world(authority.pubkey())
    with pytest.raises(ValueError):
        DriftpyAdapter(rpc).build_settle_pnl_instructions(authority, 0, 65536)
    assert rpc.requests == []


def test_missing_user_account(authority):
    rpc = _world(authority.pubkey(), subaccount_id=0)
    with pytest.raises(DriftAccountNotFound, match="subaccount 1"):
        DriftpyAdapter(rpc).build_settle_pnl_instructions(authority, 1, CLOSED_MARKET)
    with pytest.raises(DriftAccountNotFound):
        DriftpyAdapter(rpc).read_subaccount(authority.pubkey(), 1)


def test_missing_market(authority):
    rpc = _world(authority.pubkey())
    with pytest.raises(DriftAccountNotFound, match="perp market 9"):
        DriftpyAdapter(rpc).build_settle_pnl_instructions(authority, 0, 9)


def test_read_subaccount_usdc_and_closed_position():
    authority = Pubkey.new_unique()
    # 100 USDC of scaled balance with 5 % accrued deposit interest -> 105 USDC.
    rpc = _world(authority, cumulative_deposit_interest=10_500_000_000)
    state = DriftpyAdapter(rpc).read_subaccount(authority, 0)
    assert state == DriftSubaccountState(
        collateral=105_000_000 + 12_345_678,
        withdrawable=105_000_000,  # positive unsettled PnL is not withdrawable before settling
        settled_pnl=7_000_000,
        unsettled_pnl=12_345_678,
    )
    assert all(isinstance(v, int) for v in dataclasses.astuple(state))


def test_read_subaccount_open_winning_position():
    authority = Pubkey.new_unique()
    rpc = _world(authority, cumulative_deposit_interest=10_500_000_000, open_position=True)
    state = DriftpyAdapter(rpc).read_subaccount(authority, 0)
    # open long: 1 unit at 150 - entry 100 - 1 USDC funding = +49 USDC; margin 10 % of 150 = 15.
    assert state.unsettled_pnl == 12_345_678 + 49_000_000
    assert state.collateral == 105_000_000 + 12_345_678 + 49_000_000
    assert state.withdrawable == 105_000_000 - 15_000_000
    assert state.settled_pnl == 7_000_000


def test_read_subaccount_open_losing_position():
    authority = Pubkey.new_unique()
    rpc = _world(
        authority, cumulative_deposit_interest=10_500_000_000, open_position=True,
        oracle_price=80_000_000,
    )  # fmt: skip
    state = DriftpyAdapter(rpc).read_subaccount(authority, 0)
    # 80 - 100 - 1 = -21 USDC; margin 8 USDC; withdrawable = 105 - 21 - 8 = 76.
    assert state.unsettled_pnl == 12_345_678 - 21_000_000
    assert state.withdrawable == 76_000_000
    assert state.collateral == 105_000_000 + 12_345_678 - 21_000_000


def test_read_subaccount_borrow_and_liquidation():
    authority = Pubkey.new_unique()
    # 1 USDC scaled borrow, interest index 1.0000000001: ceil(1e9 * (1e10 + 1) / 1e13) = 1_000_001
    rpc = _world(authority, scaled_balance=10**9, balance_type=SpotBalanceType.Borrow())
    rpc_market = _spot_market(cumulative_borrow_interest=10**10 + 1)
    rpc.put(rpc_market.pubkey, _encode("SpotMarket", rpc_market))
    state = DriftpyAdapter(rpc).read_subaccount(authority, 0)
    assert state.collateral == -1_000_001 + 12_345_678
    assert state.withdrawable == 0

    rpc = _world(authority, status=UserStatus.BEING_LIQUIDATED)
    assert DriftpyAdapter(rpc).read_subaccount(authority, 0).withdrawable == 0


def test_repr_names_no_secret(authority):
    adapter = DriftpyAdapter(_world(authority.pubkey()))
    assert "secret" not in repr(adapter).lower()


@pytest.mark.parametrize("open_position", [False, True])
def test_positions_read_from_bytes_equal_anchorpys_full_decode(authority, open_position):
    """The builders read positions at IDL offsets (``positions.read_positions``); every field
    they read equals anchorpy's decode of the same bytes."""
    from profitshare.chain.drift.positions import read_positions

    rpc = _world(authority.pubkey(), open_position=open_position, balance_type=SpotBalanceType.Borrow())
    raw = rpc.accounts[str(program.user_pda(authority.pubkey(), 0))]
    full, fast = _CODER.decode(raw), read_positions(raw)
    for ours, theirs in zip(fast.spot_positions, full.spot_positions, strict=True):
        assert (ours.scaled_balance, ours.open_bids, ours.open_asks, ours.market_index, ours.open_orders) == (
            theirs.scaled_balance, theirs.open_bids, theirs.open_asks, theirs.market_index, theirs.open_orders)
        assert ours.balance_type == (1 if "Borrow" in type(theirs.balance_type).__name__ else 0)
    for ours, theirs in zip(fast.perp_positions, full.perp_positions, strict=True):
        assert (ours.base_asset_amount, ours.quote_asset_amount, ours.quote_entry_amount, ours.lp_shares,
                ours.market_index, ours.open_orders) == (
            theirs.base_asset_amount, theirs.quote_asset_amount, theirs.quote_entry_amount, theirs.lp_shares,
            theirs.market_index, theirs.open_orders)
    assert any(p.market_index == CLOSED_MARKET and p.quote_asset_amount == 12_345_678 for p in fast.perp_positions)
    with pytest.raises(ValueError):
        read_positions(raw[:400])
