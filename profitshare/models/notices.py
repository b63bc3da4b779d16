"""Notices to creators on Telegram: the chat a creator linked with a one-time code sent to the
product's bot, and which notices they chose (README "Notices")."""

from __future__ import annotations

from django.db import models


class CreatorNotices(models.Model):
    """Which Telegram notices a creator gets (all on by default once a chat is linked; the
    chat itself is ``CreatorWallet.telegram_chat_id``): ``payouts`` (each payout received),
    ``debts`` (a share owed to them became an IOU, expired or was voided) and ``delinquency``
    (one of their subscribers moved funds out while owing)."""

    creator = models.OneToOneField("profitshare.CreatorWallet", on_delete=models.CASCADE, related_name="notices")
    payouts = models.BooleanField(default=True)
    debts = models.BooleanField(default=True)
    delinquency = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notices of {self.creator_id}"


class TelegramLinkCode(models.Model):
    """A one-time code a creator sends to the product's bot (``/start <code>``) to link the
    chat it comes from to their wallet. Valid until ``expires_at``, once (``used_at``; the chat
    it linked is ``chat_id``)."""

    creator = models.ForeignKey("profitshare.CreatorWallet", on_delete=models.CASCADE, related_name="telegram_codes")
    code = models.CharField(max_length=32, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    chat_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"link code of {self.creator_id} ({'used' if self.used_at else 'open'})"


class TelegramUpdateOffset(models.Model):
    """How far the product has read its bot's updates (``getUpdates``): the next ``offset``
    to ask for (the newest ``update_id`` handled + 1). One row."""

    offset = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"telegram updates from {self.offset}"
