"""Typed errors and their stable codes; address parsing; bad input changes nothing on chain."""

from __future__ import annotations

import base58
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from profitshare.chain import errors
from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.drift import program
from profitshare.chain.transactions import describe_error
from tests.chain.gateway_support import USDC, funded_agent, make_gateway, wallet

WALLET = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"


def test_every_error_has_the_stable_code_the_engine_stores():
    codes = {
        errors.ChainError: "chain_error",
        errors.RpcUnavailable: "rpc_unavailable",
        errors.RpcRequestError: "rpc_error",
        errors.SendOutcomeUnknown: "send_outcome_unknown",
        errors.InsufficientSol: "insufficient_sol",
        errors.InsufficientUsdc: "insufficient_usdc",
        errors.WithdrawShort: "withdraw_short",
        errors.WithdrawFailed: "withdraw_failed",
        errors.SettleFailed: "settle_failed",
        errors.BlockhashExpired: "blockhash_expired",
        errors.InvalidAddress: "invalid_creator_wallet",
        errors.TransactionFailed: "transaction_failed",
        errors.TokenAccountMissing: "token_account_missing",
        errors.DriftSubaccountMissing: "drift_subaccount_missing",
    }
    for cls, code in codes.items():
        assert cls.code == code
        assert issubclass(cls, errors.ChainError)
    assert {cls.__name__ for cls in codes} == set(errors.__all__)


def test_errors_carry_their_amounts_and_signatures():
    short = errors.WithdrawShort(requested=1_000_000, delivered=400_000, signature="sig")
    assert (short.requested, short.delivered, short.signature) == (1_000_000, 400_000, "sig")
    sol = errors.InsufficientSol(needed_lamports=2_044_280, available_lamports=5)
    assert (sol.needed_lamports, sol.available_lamports) == (2_044_280, 5)
    assert errors.SendOutcomeUnknown("abc").signature == "abc"
    assert errors.WithdrawFailed("DailyWithdrawLimit").signature is None
    failed = errors.TransactionFailed("s", {"InstructionError": [0, {"Custom": 1}]}, ["log"])
    assert failed.logs == ["log"]


def test_parse_address_accepts_a_base58_32_byte_address():
    assert parse_address(WALLET) == Pubkey.from_string(WALLET)
    assert parse_address(Pubkey.from_string(WALLET)) == Pubkey.from_string(WALLET)
    pda = program.user_pda(Pubkey.from_string(WALLET), 0)
    assert parse_address(str(pda)) == pda  # off-curve owners (multisig vaults) may receive
    with pytest.raises(errors.InvalidAddress):
        parse_address(str(pda), require_on_curve=True)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty"),
        (None, "expected a base58 string"),
        (123, "expected a base58 string"),
        (" " + WALLET, "whitespace"),
        (WALLET + "\n", "whitespace"),
        ("0OIl" + WALLET[4:], "not base58"),
        (WALLET[:-4], "not 32"),
        (base58.b58encode(bytes(range(33))).decode(), "decodes to 33 bytes"),
        ("0x" + "ab" * 32, "not base58"),
        ("11111111111111111111111111111111", "all-zero"),
    ],
)
def test_parse_address_refuses_with_the_reason(value, why):
    with pytest.raises(errors.InvalidAddress) as caught:
        parse_address(value)
    assert why in caught.value.why
    assert caught.value.value == value or value == "11111111111111111111111111111111"
    assert caught.value.code == "invalid_creator_wallet"


def test_usdc_ata_is_the_spl_associated_token_address():
    owner = Pubkey.from_string(WALLET)
    assert usdc_ata(owner, USDC) == get_associated_token_address(owner, USDC)


def test_describe_error_names_drift_errors_only_in_drift_instructions():
    drift, token = program.DRIFT_PROGRAM_ID, Pubkey.from_string(
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
    )
    err = {"InstructionError": [1, {"Custom": 6003}]}
    assert describe_error(err, [token, drift]) == "InsufficientCollateral"
    assert describe_error({"InstructionError": [1, {"Custom": 6128}]}, [token, drift]) == (
        "DailyWithdrawLimit"
    )
    assert describe_error({"InstructionError": [0, {"Custom": 1}]}, [token, drift]) == (
        "Custom(1) in instruction 0"
    )
    assert describe_error("BlockhashNotFound") == "BlockhashNotFound"
    assert describe_error({"InsufficientFundsForRent": {"account_index": 2}}) == (
        "InsufficientFundsForRent"
    )


def test_an_invalid_creator_address_changes_nothing_on_chain(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, lamports=10**9, usdc=1_000_000)
    for bad in ["", "not-an-address", WALLET[:-1] + "0"]:
        with pytest.raises(errors.InvalidAddress):
            gateway.build_payout(agent, bad, 1_000)
    with pytest.raises(ValueError):
        gateway.build_payout(agent, Keypair().pubkey(), -5)
    assert wallet(gateway, agent.pubkey()).lamports == 10**9
    assert (wallet(gateway, agent.pubkey()).usdc or 0) == 1_000_000


