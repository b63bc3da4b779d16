"""A landed payout of several legs read back from the local node (docs/design.md, "All legs are
paid together"): every ``TransferChecked`` in order, what each destination gained, the first
transfer's fields kept as the payout's own; transactions that are not one payout are refused."""

from __future__ import annotations

import base64

import pytest
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    TransferCheckedParams,
    get_associated_token_address,
    transfer_checked,
)

from profitshare.chain.payouts import LandedTransfer, NotAPayout
from profitshare.chain.transactions import SignedTransaction, sign_transaction
from tests.chain.gateway_support import (
    FEE,
    USDC,
    confirm,
    funded_agent,
    make_gateway,
    send,
    sol,
    usdc,
)


def ata(owner):
    return get_associated_token_address(owner, USDC)


def recipient(localnet):
    """A wallet whose USDC token account exists (1 base unit in it): the other legs' accounts
    must exist before a payout pays them."""
    owner = Keypair().pubkey()
    localnet.rpc("localnet_fundUsdc", str(owner), 1)
    return owner


def pay(agent, destination, amount):
    return transfer_checked(TransferCheckedParams(
        program_id=TOKEN_PROGRAM_ID, source=ata(agent.pubkey()), mint=USDC, dest=ata(destination),
        owner=agent.pubkey(), amount=amount, decimals=6,
    ))


def test_a_payout_of_three_legs_is_read_back_transfer_by_transfer(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, usdc=10_000_000)
    creator = Keypair().pubkey()  # its token account is created by the payout
    treasury, referrer = recipient(localnet), recipient(localnet)
    signed = gateway.build_payout(
        agent, creator, 4_000_000, reference="qv:d1:a1", more_legs=[(treasury, 600_000), (referrer, 400_000)]
    )
    send(gateway, signed)
    status = confirm(gateway, signed)
    assert (usdc(localnet, creator), usdc(localnet, treasury), usdc(localnet, referrer)) == (4_000_000, 600_001, 400_001)

    landed = gateway.read_payout(signed.signature)
    assert landed.transfers == (
        LandedTransfer(creator, ata(creator), 4_000_000, 4_000_000),
        LandedTransfer(treasury, ata(treasury), 600_000, 600_000),
        LandedTransfer(referrer, ata(referrer), 400_000, 400_000),
    )
    assert landed.total == signed.amount == 5_000_000
    # the payout's own fields are the first transfer's, as for a payout of one leg
    assert (landed.amount, landed.requested) == (4_000_000, 4_000_000)
    assert (landed.destination_owner, landed.destination_ata) == (creator, ata(creator))
    assert (landed.source_owner, landed.source_ata, landed.mint) == (agent.pubkey(), ata(agent.pubkey()), USDC)
    assert (landed.slot, landed.err, landed.reference, landed.fee_lamports) == (status.slot, None, "qv:d1:a1", FEE)


def test_a_payout_of_one_leg_has_one_transfer(localnet):
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, usdc=1_000_000)
    creator = Keypair().pubkey()
    signed = gateway.build_payout(agent, creator, 250_000)
    send(gateway, signed)
    confirm(gateway, signed)
    landed = gateway.read_payout(signed.signature)
    assert landed.transfers == (LandedTransfer(creator, ata(creator), 250_000, 250_000),)
    assert landed.total == landed.amount == 250_000


def test_legs_that_land_failed_moved_nothing(localnet):
    """One leg's token account is missing: the transaction lands with an error (sent without
    preflight) and no leg is paid, the creator's neither."""
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, usdc=1_000_000)
    creator, treasury, nobody = recipient(localnet), recipient(localnet), Keypair().pubkey()
    signed = gateway.build_payout(agent, creator, 300_000, more_legs=[(treasury, 20_000), (nobody, 10_000)])
    localnet.rpc("sendTransaction", base64.b64encode(signed.raw).decode(), {"encoding": "base64", "skipPreflight": True})
    status = gateway.wait_for({signed.signature: signed.last_valid_block_height}, timeout=2)[signed.signature]
    assert status.state == "failed"
    landed = gateway.read_payout(signed.signature)
    assert landed.err is not None
    assert [(t.destination_owner, t.requested, t.amount) for t in landed.transfers] == [
        (creator, 300_000, 0), (treasury, 20_000, 0), (None, 10_000, 0),  # the missing account has no owner to read
    ]
    assert landed.total == 0
    assert (usdc(localnet, creator), usdc(localnet, treasury), usdc(localnet, agent.pubkey())) == (1, 1, 1_000_000)


def test_a_destination_named_twice_gains_once(localnet):
    """Balances are per transaction: the first transfer to an account shows all it gained, the
    next shows 0, so the transfers still add up to what moved."""
    gateway = make_gateway(localnet)
    agent = funded_agent(localnet, usdc=1_000_000)
    creator = recipient(localnet)
    signed = sign_transaction(agent, [pay(agent, creator, 70_000), pay(agent, creator, 30_000)], gateway.latest_blockhash())
    send(gateway, signed)
    confirm(gateway, signed)
    landed = gateway.read_payout(signed.signature)
    assert [(t.requested, t.amount) for t in landed.transfers] == [(70_000, 100_000), (30_000, 0)]
    assert landed.total == 100_000 == usdc(localnet, creator) - 1
    assert landed.reference is None


def test_transfers_from_two_sources_are_not_a_payout(localnet):
    gateway = make_gateway(localnet)
    first, second = funded_agent(localnet, usdc=500_000), funded_agent(localnet, usdc=500_000)
    creator = recipient(localnet)
    recent = gateway.latest_blockhash()
    tx = Transaction(
        [first, second],
        Message([pay(first, creator, 100_000), pay(second, creator, 100_000)], first.pubkey()),
        recent.blockhash,
    )
    signed = SignedTransaction(str(tx.signatures[0]), bytes(tx), str(recent.blockhash), recent.last_valid_block_height,
                               (TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID))
    send(gateway, signed)
    confirm(gateway, signed)
    assert usdc(localnet, creator) == 200_001  # it moved money, but no one agent paid it
    with pytest.raises(NotAPayout) as caught:
        gateway.read_payout(signed.signature)
    assert (caught.value.code, caught.value.signature) == ("not_a_payout", signed.signature)
    assert "more than one source" in caught.value.why


def test_a_transaction_without_a_transfer_is_not_a_payout(localnet):
    gateway = make_gateway(localnet)
    wallet = Keypair().pubkey()
    signature = localnet.rpc("requestAirdrop", str(wallet), 1_000_000)
    gateway.wait_for({signature: localnet.rpc("getBlockHeight") + 150}, timeout=2)
    assert sol(localnet, wallet) == 1_000_000
    with pytest.raises(NotAPayout) as caught:
        gateway.read_payout(signature)
    assert "no TransferChecked" in caught.value.why
