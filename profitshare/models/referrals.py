"""Who referred whom: the referral links the splits' referral legs follow."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class Referral(models.Model):
    """``referrer_wallet`` referred ``wallet`` (both base58 Solana addresses).

    A wallet has at most one referrer (``wallet`` is unique) and the links form no cycle, so
    following referrers up from any wallet ends. Links are only added: a referrer once set is
    never edited (``profitshare.services.referrals.link_referral`` refuses another one, 409).
    A creator's chain (level 1: their referrer, level 2: its referrer, level 3) is what the
    referral legs of a distribution pay (docs/design.md, "The referral chain").
    """

    wallet = models.CharField(max_length=44, unique=True)
    referrer_wallet = models.CharField(max_length=44)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(wallet=F("referrer_wallet")), name="referral_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} <- {self.referrer_wallet}"
