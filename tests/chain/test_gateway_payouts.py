"""Payouts: building and signing offline, then paying on the local node and reading it back.

Balances (SOL and USDC token accounts) are read back from the node after each payout.
"""

from __future__ import annotations

import base58
import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from profitshare.chain.errors import BlockhashExpired, SendOutcomeUnknown, TransactionFailed
from profitshare.chain.payouts import sign_payout
from profitshare.chain.transactions import RecentBlockhash
from tests.chain.gateway_support import (
    ATA_RENT,
    FEE,
    USDC,
    ata_exists,
    confirm,
    funded_agent,
    make_gateway,
    send,
    sol,
    usdc,
)

COMPUTE_BUDGET = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
RECENT = RecentBlockhash(Hash.from_string("4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi"), 1_000)


def _sign(agent, creator, amount=1_500_000, reference="qv:dist:1", price=10_000):
    return sign_payout(
        agent, creator, USDC, amount, RECENT, reference=reference,
        compute_unit_limit=60_000, compute_unit_price=price,
    )


# --- offline --------------------------------------------------------------------------------
def test_signed_payout_carries_signature_and_expiry_known_before_sending():
    agent, creator = Keypair(), Keypair().pubkey()
    signed = _sign(agent, creator)
    tx = Transaction.from_bytes(signed.raw)
    assert tx.verify_with_results() == [True]
    assert signed.signature == str(tx.signatures[0])
    assert signed.blockhash == str(RECENT.blockhash)
    assert signed.last_valid_block_height == 1_000
    assert signed.amount == 1_500_000
    assert signed.source_ata == get_associated_token_address(agent.pubkey(), USDC)
    assert signed.destination_owner == creator
    assert signed.destination_ata == get_associated_token_address(creator, USDC)
    assert len(signed.raw) <= 1232
    assert tx.message.account_keys[0] == agent.pubkey()  # the agent pays and signs alone
    assert tx.message.header.num_required_signatures == 1


def test_payout_instructions_budget_idempotent_ata_transfer_checked_and_memo():
    agent, creator = Keypair(), Keypair().pubkey()
    tx = Transaction.from_bytes(_sign(agent, creator, amount=2**40 + 7).raw)
    keys = tx.message.account_keys
    ixs = tx.message.instructions
    programs = [keys[ix.program_id_index] for ix in ixs]
    assert programs == [
        COMPUTE_BUDGET, COMPUTE_BUDGET, ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID, MEMO_PROGRAM_ID,
    ]
    limit, price, create, transfer, memo = (bytes(ix.data) for ix in ixs)
    assert limit == bytes([2]) + (60_000).to_bytes(4, "little")
    assert price == bytes([3]) + (10_000).to_bytes(8, "little")
    assert create == bytes([1])  # CreateIdempotent
    assert transfer == bytes([12]) + (2**40 + 7).to_bytes(8, "little") + bytes([6])
    assert [keys[i] for i in ixs[3].accounts] == [
        get_associated_token_address(agent.pubkey(), USDC),
        USDC,
        get_associated_token_address(creator, USDC),
        agent.pubkey(),
    ]
    assert [keys[i] for i in ixs[2].accounts][:4] == [
        agent.pubkey(), get_associated_token_address(creator, USDC), creator, USDC,
    ]
    assert memo == b"qv:dist:1"


def test_equal_payouts_with_one_blockhash_get_distinct_signatures():
    agent, creator = Keypair(), Keypair().pubkey()
    a = sign_payout(agent, creator, USDC, 10_000, RECENT, compute_unit_limit=60_000, compute_unit_price=0)
    b = sign_payout(agent, creator, USDC, 10_000, RECENT, compute_unit_limit=60_000, compute_unit_price=0)
    assert a.signature != b.signature
    assert a.reference != b.reference
    assert _sign(agent, creator).signature == _sign(agent, creator).signature  # deterministic


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, 2**64, "10"])
def test_bad_amounts_are_refused(amount):
    with pytest.raises(ValueError):
        _sign(Keypair(), Keypair().pubkey(), amount=amount)


@pytest.mark.parametrize("reference", ["", "x" * 65, 7])
def test_bad_references_are_refused(reference):
    with pytest.raises(ValueError):
        _sign(Keypair(), Keypair().pubkey(), reference=reference)


# --- on the local node ------------------------------------------------------------------------
def test_pay_a_fresh_wallet_creates_its_ata_and_charges_rent_plus_fee(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, lamports=10**9, usdc=5_000_000)
    creator = Keypair().pubkey()  # never seen on chain
    assert not ata_exists(localnet, creator)

    signed = gateway.build_payout(agent, creator, 1_234_567, reference="qv:dist:fresh")
    send(gateway, signed)
    status = confirm(gateway, signed)

    assert status.state == "landed"
    assert ata_exists(localnet, creator)
    assert usdc(localnet, creator) == 1_234_567
    assert usdc(localnet, agent.pubkey()) == 5_000_000 - 1_234_567
    assert sol(localnet, agent.pubkey()) == 10**9 - ATA_RENT - FEE
    assert sol(localnet, creator) == 0  # the creator paid nothing


def test_a_payout_of_five_legs_to_a_new_creator_account_has_the_compute_units_it_needs(localnet):
    """Five legs and the creator's new ATA cost up to ~62k compute units (the ATA's bump search
    depends on the address): over a flat 60k limit, so the limit grows by
    ``COMPUTE_UNITS_PER_EXTRA_LEG`` per leg, and every such payout lands."""
    from profitshare.chain.fees import COMPUTE_UNITS_PER_EXTRA_LEG

    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, lamports=10**9, usdc=100_000_000)
    others = [Keypair().pubkey() for _ in range(4)]
    for owner in others:
        localnet.rpc("localnet_fundUsdc", str(owner), 1)
    for n in range(12):  # a dozen random creator addresses: under a flat 60k, some would fail
        creator = Keypair().pubkey()
        signed = gateway.build_payout(
            agent, creator, 905_000, reference=f"qv:legs:{n}", more_legs=list(zip(others, (15_000, 50_000, 20_000, 10_000), strict=True)),
        )
        budget = Transaction.from_bytes(signed.raw).message.instructions[0]
        assert int.from_bytes(bytes(budget.data)[1:5], "little") == 60_000 + 4 * COMPUTE_UNITS_PER_EXTRA_LEG
        send(gateway, signed)
        assert confirm(gateway, signed).state == "landed"
        assert usdc(localnet, creator) == 905_000
    assert [usdc(localnet, owner) for owner in others] == [1 + 12 * a for a in (15_000, 50_000, 20_000, 10_000)]


def test_read_payout_equals_what_was_sent(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, usdc=3_000_000)
    creator = Keypair().pubkey()
    signed = gateway.build_payout(agent, creator, 2_500_001, reference="qv:dist:read")
    send(gateway, signed)
    status = confirm(gateway, signed)

    landed = gateway.read_payout(signed.signature)
    assert landed.signature == signed.signature
    assert landed.amount == landed.requested == signed.amount == 2_500_001
    assert landed.mint == USDC
    assert landed.source_owner == agent.pubkey()
    assert landed.source_ata == signed.source_ata
    assert landed.destination_owner == creator
    assert landed.destination_ata == signed.destination_ata
    assert landed.fee_lamports == FEE
    assert landed.slot == status.slot
    assert landed.err is None
    assert landed.reference == "qv:dist:read"
    tx = localnet.rpc("getTransaction", signed.signature, {"encoding": "json"})
    assert tx["meta"]["computeUnitsConsumed"] <= 60_000  # fits the budget we set
    assert gateway.read_payout(base58.b58encode(bytes(64)).decode()) is None


def test_two_equal_payouts_to_one_new_ata_in_one_slot_both_land(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, lamports=10**9, usdc=1_000_000)
    creator = Keypair().pubkey()
    first = gateway.build_payout(agent, creator, 100_000)
    second = gateway.build_payout(agent, creator, 100_000)
    assert first.blockhash == second.blockhash  # manual clock: same slot
    for signed in (first, second):
        send(gateway, signed)
        confirm(gateway, signed)
    assert usdc(localnet, creator) == 200_000
    assert sol(localnet, agent.pubkey()) == 10**9 - ATA_RENT - 2 * FEE  # rent once


def test_resending_the_same_bytes_pays_once(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, usdc=1_000_000)
    creator = Keypair().pubkey()
    signed = gateway.build_payout(agent, creator, 400_000)
    send(gateway, signed)
    send(gateway, signed)  # AlreadyProcessed: returns, nothing moves
    localnet.rpc("localnet_advanceSlots", 5)
    send(gateway, signed)
    assert usdc(localnet, creator) == 400_000
    assert usdc(localnet, agent.pubkey()) == 600_000


def test_blockhash_valid_for_150_blocks_then_refused_as_expired(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, lamports=10**9, usdc=1_000_000)
    creator = Keypair().pubkey()
    on_time = gateway.build_payout(agent, creator, 1_000)
    late = gateway.build_payout(agent, creator, 2_000)
    assert on_time.last_valid_block_height == localnet.rpc("getBlockHeight") + 150

    localnet.rpc("localnet_advanceSlots", 150)
    assert gateway.decide({late.signature: late.last_valid_block_height})[late.signature].state == "unknown"
    send(gateway, on_time)
    assert confirm(gateway, on_time).state == "landed"

    localnet.rpc("localnet_advanceSlots", 1)
    assert gateway.decide({late.signature: late.last_valid_block_height})[late.signature].state == "expired"
    with pytest.raises(BlockhashExpired) as caught:
        send(gateway, late)
    assert caught.value.code == "blockhash_expired"
    assert gateway.signature_status(late.signature).state == "unknown"
    assert usdc(localnet, creator) == 1_000
    assert sol(localnet, agent.pubkey()) == 10**9 - ATA_RENT - FEE


def test_lost_response_is_outcome_unknown_then_resolved_as_landed(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, usdc=1_000_000)
    creator = Keypair().pubkey()
    signed = gateway.build_payout(agent, creator, 700_000)
    localnet.rpc("localnet_setFaults", {"loseResponseRate": 1.0})
    with pytest.raises(SendOutcomeUnknown) as caught:
        send(gateway, signed)
    assert caught.value.signature == signed.signature
    localnet.rpc("localnet_setFaults", {})

    status = gateway.signature_status(signed.signature)
    assert status.state == "landed" and status.err is None
    assert confirm(gateway, signed).state == "landed"
    send(gateway, signed)  # re-broadcasting the same bytes is harmless
    assert usdc(localnet, creator) == 700_000  # paid exactly once


def test_dropped_send_is_unknown_until_expiry_then_blockhash_expired(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, lamports=10**9, usdc=1_000_000)
    creator = Keypair().pubkey()
    signed = gateway.build_payout(agent, creator, 300_000)
    localnet.rpc("localnet_setFaults", {"dropRate": 1.0})
    send(gateway, signed)  # accepted by the RPC, never lands
    localnet.rpc("localnet_setFaults", {})

    with pytest.raises(SendOutcomeUnknown):  # not expired yet: undecided
        confirm(gateway, signed, timeout=0.2)
    localnet.rpc("localnet_advanceSlots", 151)
    with pytest.raises(BlockhashExpired):
        confirm(gateway, signed, timeout=5)
    assert gateway.signature_status(signed.signature).state == "unknown"
    assert usdc(localnet, creator) == 0
    assert sol(localnet, agent.pubkey()) == 10**9  # nothing charged

    retry = gateway.build_payout(agent, creator, 300_000)  # only now may a new tx be signed
    send(gateway, retry)
    confirm(gateway, retry)
    assert usdc(localnet, creator) == 300_000


def test_preflight_failure_is_transaction_failed_and_charges_nothing(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, lamports=10**9, usdc=100)
    creator = Keypair().pubkey()
    signed = gateway.build_payout(agent, creator, 101)
    with pytest.raises(TransactionFailed) as caught:
        send(gateway, signed)
    assert caught.value.signature == signed.signature
    # instruction 2 (no price instruction at priority 0) is TransferChecked; SPL error 1 =
    # InsufficientFunds
    assert caught.value.err == {"InstructionError": [2, {"Custom": 1}]}
    assert caught.value.logs
    assert sol(localnet, agent.pubkey()) == 10**9
    assert usdc(localnet, agent.pubkey()) == 100
    assert not ata_exists(localnet, creator)
