"""The local node speaks Solana's JSON-RPC: solana-py parses it, and bad requests get errors."""

from __future__ import annotations

import httpx
import pytest
from solana.rpc.api import Client
from solana.rpc.core import RPCException
from solana.rpc.types import TokenAccountOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from tests.localnet.helpers import USDC, funded_wallet


def post(localnet, body: bytes | str, content_type: str = "application/json") -> httpx.Response:
    return httpx.post(localnet.url, content=body, headers={"Content-Type": content_type}, timeout=10)


def test_cluster_methods_parse_in_solana_py(localnet):
    client = Client(localnet.url)
    assert client.get_slot().value == localnet.rpc("getSlot")
    assert client.get_block_height().value == localnet.rpc("getBlockHeight")
    assert "localnet" in client.get_version().value.solana_core
    assert localnet.rpc("getHealth") == "ok"
    latest = client.get_latest_blockhash().value
    assert latest.last_valid_block_height == client.get_block_height().value + 150
    assert localnet.rpc("isBlockhashValid", str(latest.blockhash))["value"] is True
    assert localnet.rpc("isBlockhashValid", str(Keypair().pubkey()))["value"] is False
    assert client.get_minimum_balance_for_rent_exemption(165).value == 2_039_280


def test_airdrop_and_usdc_funding_show_in_balances(localnet):
    client = Client(localnet.url)
    wallet = funded_wallet(localnet, lamports=3_000_000_000, usdc=12_345_678)
    assert client.get_balance(wallet.pubkey()).value == 3_000_000_000
    ata = get_associated_token_address(wallet.pubkey(), USDC)
    balance = client.get_token_account_balance(ata).value
    assert (balance.amount, balance.decimals, balance.ui_amount_string) == ("12345678", 6, "12.345678")
    funded = localnet.rpc("localnet_fundUsdc", str(wallet.pubkey()), 2)
    assert funded["balance"] == 12_345_680 and funded["ata"] == str(ata)
    by_owner = client.get_token_accounts_by_owner(wallet.pubkey(), TokenAccountOpts(mint=USDC)).value
    assert [str(a.pubkey) for a in by_owner] == [str(ata)]
    parsed = client.get_account_info_json_parsed(ata).value.data.parsed
    assert parsed["info"]["tokenAmount"]["amount"] == "12345680"
    accounts = client.get_multiple_accounts([wallet.pubkey(), Keypair().pubkey()]).value
    assert accounts[0].lamports == 3_000_000_000 and accounts[1] is None


def test_token_balance_of_a_non_token_account_is_an_error(localnet):
    wallet = funded_wallet(localnet)
    with pytest.raises(RPCException, match="not a Token account"):
        Client(localnet.url).get_token_account_balance(wallet.pubkey())


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", -32700),
        ('{"jsonrpc": "1.0", "id": 1, "method": "getSlot"}', -32600),
        ('{"jsonrpc": "2.0", "id": 1}', -32600),
        ("[]", -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getNothing"}', -32601),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": ["not-base58!"]}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": {"a": 1}}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": []}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "requestAirdrop", "params": ["11111111111111111111111111111111", -5]}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "sendTransaction", "params": ["%%%"]}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "localnet_fundUsdc", "params": ["11111111111111111111111111111111", 1.5]}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "localnet_setFaults", "params": [{"dropRate": 2}]}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "localnet_setFaults", "params": [{"nonsense": 1}]}', -32602),
    ],
)
def test_malformed_requests_get_json_rpc_errors(localnet, body, code):
    slot_before = localnet.rpc("getSlot")
    response = post(localnet, body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert localnet.rpc("getSlot") == slot_before


def test_batch_requests_answer_each_member(localnet):
    response = post(
        localnet,
        '[{"jsonrpc":"2.0","id":1,"method":"getSlot"},{"jsonrpc":"2.0","id":2,"method":"nope"}]',
    )
    first, second = response.json()
    assert first["id"] == 1 and "result" in first
    assert second["id"] == 2 and second["error"]["code"] == -32601


def test_get_is_not_an_html_page(localnet):
    assert httpx.get(localnet.url + "/health").text == "ok"
    response = httpx.get(localnet.url + "/anything")
    assert response.status_code == 405 and response.json()["error"]["code"] == -32600


def test_unknown_drift_account_reads_as_null(localnet):
    assert localnet.rpc("localnet_driftAccount", str(Pubkey.new_unique()), 0) is None
