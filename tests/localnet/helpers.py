"""Helpers for local-node tests: wallets, payouts built with solana-py's own instructions."""

from __future__ import annotations

from solana.rpc.api import Client
from solders.compute_budget import set_compute_unit_price
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    TransferCheckedParams,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)

USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")


def funded_wallet(localnet, *, lamports: int = 10**9, usdc: int = 0) -> Keypair:
    """A new keypair with ``lamports`` SOL and ``usdc`` base units in its ATA."""
    wallet = Keypair()
    localnet.rpc("requestAirdrop", str(wallet.pubkey()), lamports)
    if usdc:
        localnet.rpc("localnet_fundUsdc", str(wallet.pubkey()), usdc)
    return wallet


def usdc_payout(client: Client, payer: Keypair, owner: Pubkey, amount: int, *, price: int = 0) -> Transaction:
    """Signed: idempotent ATA create for ``owner`` + transfer_checked of ``amount`` base units."""
    ata = get_associated_token_address(owner, USDC)
    instructions = [
        create_idempotent_associated_token_account(payer.pubkey(), owner, USDC),
        transfer_checked(
            TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                source=get_associated_token_address(payer.pubkey(), USDC),
                mint=USDC,
                dest=ata,
                owner=payer.pubkey(),
                amount=amount,
                decimals=6,
            )
        ),
    ]
    if price:
        instructions.insert(0, set_compute_unit_price(price))
    blockhash: Hash = client.get_latest_blockhash().value.blockhash
    return Transaction([payer], Message(instructions, payer.pubkey()), blockhash)


def drift_transaction(client: Client, signer: Keypair, instructions: list) -> Transaction:
    """Sign Drift instructions (plus anything else given) with ``signer`` as fee payer."""
    blockhash = client.get_latest_blockhash().value.blockhash
    return Transaction([signer], Message(instructions, signer.pubkey()), blockhash)
