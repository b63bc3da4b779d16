"""Wallets: the creator's own wallet (receives USDC) and the server-managed agent wallets."""

from __future__ import annotations

from django.db import models


class CreatorWallet(models.Model):
    """A creator's own Solana wallet (base58 address). Payouts go to its USDC ATA.

    ``telegram_chat_id``: where payout notices go, when the creator linked a chat.
    """

    address = models.CharField(max_length=44, unique=True)
    telegram_chat_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.address


class AgentWallet(models.Model):
    """A server-managed wallet that trades a subscriber's Drift subaccount and pays the share.

    ``encrypted_secret``: the 64-byte keypair encrypted with MultiFernet
    (``profitshare.chain.keys``); it is never logged and never leaves the service decrypted.
    """

    pubkey = models.CharField(max_length=44, unique=True)
    encrypted_secret = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.pubkey
