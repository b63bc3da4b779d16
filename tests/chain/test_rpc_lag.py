"""Two endpoints at different heights in front of one node (docs/design.md, "Expired only from a
caught-up node"): the pool measures how far behind each is and prefers the caught-up one; a
signature is decided on one endpoint, and a replica behind never calls a landed transfer
expired, even when the caught-up endpoint refuses status reads."""

from __future__ import annotations

from solders.keypair import Keypair

from profitshare.chain.rpc import rpc_error_counts
from tests.chain.gateway_support import funded_agent, make_gateway, send, usdc

LAG = 300
#: The issue's setup: the primary rate-limits status reads (HTTP 503/429), the replica is behind.
PRIMARY_REFUSES_STATUSES = {"httpErrorRate": 1.0, "httpErrorMethods": ["getSignatureStatuses"]}


def lagging(localnet, *, refuse_statuses: bool = True, lag: int = LAG) -> None:
    endpoints = {"replica": {"lagSlots": lag}}
    if refuse_statuses:
        endpoints["primary"] = PRIMARY_REFUSES_STATUSES
    localnet.rpc("localnet_setFaults", {"seed": 5, "endpoints": endpoints})


def test_the_pool_measures_each_endpoints_lag_and_reads_from_the_caught_up_one(localnet, replica):
    localnet.rpc("localnet_advanceSlots", LAG)
    gateway = make_gateway(localnet, urls=[replica.url, localnet.url], slot_probe_seconds=0)  # the replica listed first
    lagging(localnet, refuse_statuses=False)
    now = localnet.rpc("getSlot")
    assert gateway.pool.measure_slots() == {replica.url: now - LAG, localnet.url: now}
    assert gateway.pool.slot_lags() == {replica.url: LAG, localnet.url: 0}
    assert gateway.latest_blockhash().last_valid_block_height == now + 150  # not the replica's old blockhash
    assert gateway.slot() == now
    localnet.rpc("localnet_setFaults", {})  # the replica catches up
    gateway.pool.measure_slots()
    assert gateway.pool.slot_lags() == {replica.url: 0, localnet.url: 0}


def test_a_landed_transfer_is_never_expired_by_a_replica_that_has_not_seen_it(localnet, replica):
    gateway = make_gateway(localnet, urls=[localnet.url, replica.url], slot_probe_seconds=0)
    agent = funded_agent(localnet, usdc=3_000_000)
    creator = Keypair().pubkey()
    lagging(localnet)
    signed = gateway.build_payout(agent, creator, 3_000_000)
    send(gateway, signed)
    assert usdc(localnet, creator) == 3_000_000  # it landed
    before = rpc_error_counts()
    assert gateway.wait_for({signed.signature: signed.last_valid_block_height}, timeout=0.2)[signed.signature].state == "unknown"
    localnet.rpc("localnet_advanceSlots", 151)
    # what the old decision combined: the primary's height is past the last valid block height,
    # and the replica (the only endpoint answering statuses) has not seen the transfer
    assert localnet.rpc("getBlockHeight") > signed.last_valid_block_height
    assert replica.rpc("getSignatureStatuses", [signed.signature], {"searchTransactionHistory": True})["value"] == [None]
    assert gateway.decide({signed.signature: signed.last_valid_block_height})[signed.signature].state == "unknown"
    assert rpc_error_counts().get((localnet.url, "http_503"), 0) + rpc_error_counts().get((localnet.url, "http_429"), 0) > (
        before.get((localnet.url, "http_503"), 0) + before.get((localnet.url, "http_429"), 0))  # statuses were refused
    localnet.rpc("localnet_advanceSlots", LAG)
    status = gateway.wait_for({signed.signature: signed.last_valid_block_height}, timeout=1)[signed.signature]
    assert (status.state, status.err) == ("landed", None)


def test_a_dropped_transfer_expires_only_once_the_answering_replica_passed_its_last_valid_height(localnet, replica):
    gateway = make_gateway(localnet, urls=[localnet.url, replica.url], slot_probe_seconds=0)
    agent = funded_agent(localnet, usdc=1_000_000)
    creator = Keypair().pubkey()
    signed = gateway.build_payout(agent, creator, 1_000_000)
    localnet.rpc("localnet_setFaults", {"dropRate": 1.0})
    send(gateway, signed)  # accepted, never lands
    lagging(localnet)
    localnet.rpc("localnet_advanceSlots", 151)
    pending = {signed.signature: signed.last_valid_block_height}
    assert gateway.decide(pending)[signed.signature].state == "unknown"  # the replica is at last_valid - 149
    localnet.rpc("localnet_advanceSlots", LAG - 1)
    assert gateway.decide(pending)[signed.signature].state == "unknown"  # exactly at its last valid height
    localnet.rpc("localnet_advanceSlots", 1)
    assert gateway.decide(pending)[signed.signature].state == "expired"  # past it, having seen every block
    assert usdc(localnet, creator) == 0


def test_an_endpoint_behind_a_min_context_slot_is_passed_over(localnet, replica):
    gateway = make_gateway(localnet, urls=[replica.url, localnet.url])  # no probes: the replica is tried first
    localnet.rpc("localnet_advanceSlots", 21)
    lagging(localnet, refuse_statuses=False, lag=20)
    now = localnet.rpc("getSlot")
    before = rpc_error_counts().get((replica.url, "behind"), 0)
    assert gateway.pool.call("getSlot", {"commitment": "confirmed", "minContextSlot": now}) == now
    assert rpc_error_counts().get((replica.url, "behind"), 0) == before + 1
