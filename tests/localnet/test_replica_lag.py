"""The lagging-replica fault: a second server over the same node answers as of ``lagSlots`` ago
(slots, heights, blockhashes, statuses, transactions, address histories, context slots), honours
``minContextSlot`` with Solana's -32016, and fails HTTP on its own (``endpoints`` faults)."""

from __future__ import annotations

import httpx
import pytest
from solana.rpc.api import Client
from solders.keypair import Keypair

from tests.localnet.helpers import funded_wallet, usdc_payout

LAG = 40


def raw(url: str, method: str, *params):
    """The whole JSON-RPC answer (result or error) and its HTTP status."""
    response = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    return response.status_code, response.json()


def lag_replica(localnet, slots: int = LAG, *, advance: bool = True) -> None:
    """The replica answers ``slots`` behind (the node first moves that far, so it is past genesis)."""
    if advance:
        localnet.rpc("localnet_advanceSlots", slots)
    localnet.rpc("localnet_setFaults", {"endpoints": {"replica": {"lagSlots": slots}}})


def test_a_replica_answers_heights_and_blockhashes_as_of_lag_slots_ago(localnet, replica):
    localnet.rpc("localnet_advanceSlots", LAG + 5)
    then = localnet.rpc("getLatestBlockhash")["value"]
    localnet.rpc("localnet_advanceSlots", LAG)
    lag_replica(localnet, advance=False)
    now = localnet.rpc("getSlot")
    assert replica.rpc("getSlot") == replica.rpc("getBlockHeight") == now - LAG
    epoch = replica.rpc("getEpochInfo", {"commitment": "finalized"})
    assert (epoch["absoluteSlot"], epoch["blockHeight"]) == (now - LAG, now - LAG)
    behind = replica.rpc("getLatestBlockhash")
    assert behind["context"]["slot"] == now - LAG
    assert behind["value"] == then  # the blockhash the node issued LAG slots ago, its old lifetime
    assert localnet.rpc("getLatestBlockhash")["value"]["lastValidBlockHeight"] == now + 150
    assert replica.rpc("isBlockhashValid", localnet.rpc("getLatestBlockhash")["value"]["blockhash"])["value"] is False
    assert localnet.rpc("getSlot") == now  # the primary is not behind


def test_a_replica_sees_a_transaction_only_lag_slots_after_it_landed(localnet, replica):
    client = Client(localnet.url)
    payer = funded_wallet(localnet, usdc=1_000)
    lag_replica(localnet)
    tx = usdc_payout(client, payer, Keypair().pubkey(), 10)
    signature = str(client.send_transaction(tx).value)
    landed_at = localnet.rpc("getSlot")
    assert localnet.rpc("getSignatureStatuses", [signature])["value"][0]["confirmationStatus"] == "confirmed"
    statuses = replica.rpc("getSignatureStatuses", [signature], {"searchTransactionHistory": True})
    assert statuses == {"context": {"slot": landed_at - LAG, "apiVersion": statuses["context"]["apiVersion"]}, "value": [None]}
    assert replica.rpc("getTransaction", signature, {"encoding": "json"}) is None
    assert signature not in [e["signature"] for e in replica.rpc("getSignaturesForAddress", str(payer.pubkey()))]
    localnet.rpc("localnet_advanceSlots", LAG)
    status = replica.rpc("getSignatureStatuses", [signature])["value"][0]
    assert (status["slot"], status["confirmationStatus"], status["err"]) == (landed_at, "confirmed", None)
    assert replica.rpc("getTransaction", signature, {"encoding": "json"})["slot"] == landed_at
    assert signature in [e["signature"] for e in replica.rpc("getSignaturesForAddress", str(payer.pubkey()))]


def test_min_context_slot_past_the_view_is_minus_32016_with_the_context_slot(localnet, replica):
    lag_replica(localnet)
    now = localnet.rpc("getSlot")
    status, body = raw(replica.url, "getSignatureStatuses", [], {"minContextSlot": now})
    assert status == 200
    assert body["error"] == {"code": -32016, "message": "Minimum context slot has not been reached",
                             "data": {"contextSlot": now - LAG}}
    assert raw(replica.url, "getSlot", {"minContextSlot": now - LAG})[1]["result"] == now - LAG
    assert raw(localnet.url, "getSlot", {"minContextSlot": now})[1]["result"] == now
    assert raw(localnet.url, "getBlockHeight", {"minContextSlot": now + 1})[1]["error"]["code"] == -32016
    assert raw(localnet.url, "getSlot", {"minContextSlot": "soon"})[1]["error"]["code"] == -32602


def test_endpoint_faults_are_per_server_and_per_method(localnet, replica):
    localnet.rpc("localnet_setFaults", {"httpErrorRate": 1.0, "endpoints": {
        "primary": {"httpErrorRate": 1.0, "httpErrorMethods": ["getSignatureStatuses"]},
    }})
    assert raw(localnet.url, "getSignatureStatuses", [])[0] in (429, 503)
    assert raw(localnet.url, "getSlot")[0] == 200  # only the listed method is rate-limited
    assert raw(replica.url, "getSlot")[0] in (429, 503)  # no entry: the top-level faults apply
    faults = localnet.rpc("localnet_getFaults")
    assert faults["endpoints"]["primary"] == {"latencyMs": 0, "httpErrorRate": 1.0,
                                              "httpErrorMethods": ["getSignatureStatuses"], "lagSlots": 0}
    assert faults["lagSlots"] == 0 and faults["httpErrorRate"] == 1.0


@pytest.mark.parametrize("bad", [
    {"endpoints": {"replica": {"dropRate": 1.0}}},
    {"endpoints": {"replica": {"lagSlots": -1}}},
    {"endpoints": ["replica"]},
    {"lagSlots": 1.5},
    {"httpErrorMethods": "getSlot"},
])
def test_bad_lag_faults_are_refused_and_change_nothing(localnet, bad):
    localnet.rpc("localnet_setFaults", {"endpoints": {"replica": {"lagSlots": 7}}})
    status, body = raw(localnet.url, "localnet_setFaults", bad)
    assert body["error"]["code"] == -32602
    assert localnet.rpc("localnet_getFaults")["endpoints"]["replica"]["lagSlots"] == 7
