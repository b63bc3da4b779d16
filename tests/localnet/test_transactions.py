"""Transactions on the local node: real fees and rent, blockhash window, exactly-once landing."""

from __future__ import annotations

import threading

import pytest
from solana.rpc.api import Client
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from spl.token.instructions import get_associated_token_address

from tests.localnet.helpers import USDC, funded_wallet, usdc_payout

ATA_RENT = 2_039_280
FEE = 5_000


def token_amount(client: Client, owner) -> int:
    return int(client.get_token_account_balance(get_associated_token_address(owner, USDC)).value.amount)


def test_first_payout_to_a_fresh_wallet_pays_ata_rent_and_fee(localnet):
    client = Client(localnet.url)
    payer = funded_wallet(localnet, usdc=10_000_000)
    creator = Keypair().pubkey()
    lamports_before = client.get_balance(payer.pubkey()).value
    signature = client.send_transaction(usdc_payout(client, payer, creator, 2_500_000)).value
    assert client.get_balance(payer.pubkey()).value == lamports_before - ATA_RENT - FEE
    assert token_amount(client, creator) == 2_500_000
    assert token_amount(client, payer.pubkey()) == 7_500_000
    # a second payout to the now-existing ATA costs the fee only
    client.send_transaction(usdc_payout(client, payer, creator, 1))
    assert client.get_balance(payer.pubkey()).value == lamports_before - ATA_RENT - 2 * FEE
    landed = client.get_transaction(signature, encoding="json", max_supported_transaction_version=0).value
    meta = landed.transaction.meta
    assert meta.fee == FEE and meta.err is None
    keys = [str(k) for k in landed.transaction.transaction.message.account_keys]
    payer_index = keys.index(str(payer.pubkey()))
    assert meta.pre_balances[payer_index] - meta.post_balances[payer_index] == ATA_RENT + FEE
    post = {b.owner and str(b.owner): int(b.ui_token_amount.amount) for b in meta.post_token_balances}
    pre = {b.owner and str(b.owner): int(b.ui_token_amount.amount) for b in meta.pre_token_balances}
    assert post[str(creator)] == 2_500_000 and str(creator) not in pre
    assert pre[str(payer.pubkey())] - post[str(payer.pubkey())] == 2_500_000
    history = client.get_signatures_for_address(creator).value
    assert [str(h.signature) for h in history][-1] == str(signature)


def test_priority_fee_is_accepted_but_not_charged(localnet):
    client = Client(localnet.url)
    payer = funded_wallet(localnet, usdc=1_000)
    creator = Keypair().pubkey()
    localnet.rpc("localnet_fundUsdc", str(creator), 1)  # ATA exists
    before = client.get_balance(payer.pubkey()).value
    tx = usdc_payout(client, payer, creator, 10, price=1_000_000)
    assert client.get_fee_for_message(tx.message).value == FEE
    client.send_transaction(tx)
    assert client.get_balance(payer.pubkey()).value == before - FEE


def test_two_concurrent_first_payouts_to_one_new_ata_both_land(localnet):
    client = Client(localnet.url)
    payers = [funded_wallet(localnet, usdc=1_000_000) for _ in range(2)]
    creator = Keypair().pubkey()
    transactions = [usdc_payout(client, p, creator, 400_000 + i) for i, p in enumerate(payers)]
    errors: list[Exception] = []

    def send(tx):
        try:
            Client(localnet.url).send_transaction(tx)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(tx,)) for tx in transactions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert token_amount(client, creator) == 800_001
    spent = sorted(1_000_000_000 - client.get_balance(p.pubkey()).value for p in payers)
    assert spent == [FEE, ATA_RENT + FEE]  # exactly one of them paid the rent


def test_resending_identical_bytes_lands_once(localnet):
    client = Client(localnet.url)
    payer = funded_wallet(localnet, usdc=1_000_000)
    creator = Keypair().pubkey()
    tx = usdc_payout(client, payer, creator, 300_000)
    signature = client.send_transaction(tx, opts=TxOpts(skip_preflight=True)).value
    # more than LiteSVM's default 500-entry history in between, then the same bytes again
    sender = funded_wallet(localnet, lamports=10**10)
    blockhash = client.get_latest_blockhash().value.blockhash
    for n in range(520):
        ix = transfer(TransferParams(from_pubkey=sender.pubkey(), to_pubkey=creator, lamports=1_000_000 + n))
        localnet.node.send_transaction_parsed(
            *_versioned(Transaction([sender], Message([ix], sender.pubkey()), blockhash)), preflight=False
        )
    again = client.send_transaction(tx, opts=TxOpts(skip_preflight=True)).value
    assert again == signature
    with pytest.raises(RPCException, match="already been processed"):
        client.send_transaction(tx)
    assert token_amount(client, creator) == 300_000


def _versioned(tx: Transaction):
    from solders.transaction import VersionedTransaction

    return VersionedTransaction.from_legacy(tx), bytes(tx)


def test_blockhash_is_valid_for_150_blocks_then_refused(localnet):
    client = Client(localnet.url)
    payer = funded_wallet(localnet, usdc=1_000_000)
    creator = Keypair().pubkey()
    early = usdc_payout(client, payer, creator, 5)
    late = usdc_payout(client, payer, creator, 7)  # same blockhash, different bytes
    blockhash = str(early.message.recent_blockhash)
    localnet.rpc("localnet_advanceSlots", 150)
    assert localnet.rpc("isBlockhashValid", blockhash)["value"] is True
    client.send_transaction(early)  # 150 blocks later: still accepted
    localnet.rpc("localnet_advanceSlots", 1)
    assert localnet.rpc("isBlockhashValid", blockhash)["value"] is False
    with pytest.raises(RPCException, match="Blockhash not found"):
        client.send_transaction(late)
    # without preflight the RPC accepts it, but it never lands
    signature = client.send_transaction(late, opts=TxOpts(skip_preflight=True)).value
    assert client.get_signature_statuses([signature], search_transaction_history=True).value == [None]
    assert token_amount(client, creator) == 5


def test_failed_transaction_lands_with_err_and_fee_without_preflight(localnet):
    client = Client(localnet.url)
    payer = funded_wallet(localnet, usdc=100)
    creator = Keypair().pubkey()
    before = client.get_balance(payer.pubkey()).value
    tx = usdc_payout(client, payer, creator, 101)  # more than the payer holds
    with pytest.raises(RPCException, match="custom program error: 0x1"):
        client.send_transaction(tx)
    assert client.get_balance(payer.pubkey()).value == before  # preflight charges nothing
    signature = client.send_transaction(tx, opts=TxOpts(skip_preflight=True)).value
    status = client.get_signature_statuses([signature]).value[0]
    assert status.err is not None
    assert client.get_balance(payer.pubkey()).value == before - FEE
    landed = localnet.rpc("getTransaction", str(signature), {"encoding": "json"})
    assert landed["meta"]["err"] == {"InstructionError": [1, {"Custom": 1}]}
    assert any("insufficient funds" in line for line in landed["meta"]["logMessages"])


def test_unfunded_fee_payer_never_lands(localnet):
    client = Client(localnet.url)
    ghost = Keypair()
    ix = transfer(TransferParams(from_pubkey=ghost.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1))
    tx = Transaction([ghost], Message([ix], ghost.pubkey()), client.get_latest_blockhash().value.blockhash)
    with pytest.raises(RPCException, match="no record of a prior credit"):
        client.send_transaction(tx)
    signature = client.send_transaction(tx, opts=TxOpts(skip_preflight=True)).value
    assert client.get_signature_statuses([signature], search_transaction_history=True).value == [None]


def test_bad_signature_and_oversized_transactions_are_refused(localnet):
    client = Client(localnet.url)
    payer = funded_wallet(localnet)
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1))
    blockhash = client.get_latest_blockhash().value.blockhash
    tx = Transaction([payer], Message([ix], payer.pubkey()), blockhash)
    raw = bytearray(bytes(tx))
    raw[10] ^= 0xFF  # corrupt the signature
    import base64

    with pytest.raises(RuntimeError, match="-32003"):
        localnet.rpc("sendTransaction", base64.b64encode(bytes(raw)).decode(), {"encoding": "base64"})
    big = Transaction([payer], Message([ix] * 80, payer.pubkey()), blockhash)
    assert len(bytes(big)) > 1232
    with pytest.raises(RuntimeError, match="too large"):
        localnet.rpc("sendTransaction", base64.b64encode(bytes(big)).decode(), {"encoding": "base64"})


def test_simulate_changes_nothing(localnet):
    client = Client(localnet.url)
    payer = funded_wallet(localnet, usdc=1_000)
    creator = Keypair().pubkey()
    result = client.simulate_transaction(usdc_payout(client, payer, creator, 999)).value
    assert result.err is None and result.units_consumed > 0
    assert client.get_account_info(get_associated_token_address(creator, USDC)).value is None
    assert client.get_balance(payer.pubkey()).value == 1_000_000_000


def test_many_threads_sending_keep_balances_consistent(localnet):
    client = Client(localnet.url)
    creator = Keypair().pubkey()
    payers = [funded_wallet(localnet, usdc=1_000) for _ in range(8)]

    def pay(payer):
        own = Client(localnet.url)
        for n in range(10):
            own.send_transaction(usdc_payout(own, payer, creator, 10 + n))

    threads = [threading.Thread(target=pay, args=(p,)) for p in payers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert token_amount(client, creator) == 8 * sum(10 + n for n in range(10))
    assert sum(token_amount(client, p.pubkey()) for p in payers) == 8 * (1_000 - 145)
