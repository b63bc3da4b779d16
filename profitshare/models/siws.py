"""Sign-In With Solana nonces: issued by the server, signed by the wallet, used once."""

from __future__ import annotations

from django.db import models


class SiwsNonce(models.Model):
    """One sign-in challenge for ``address`` on ``domain``.

    The message the wallet signs is rebuilt from these fields (``profitshare.services.siws``),
    so nothing the browser sends back can change it. ``used_at`` is set by the first
    verification attempt, successful or not: a nonce is good for one try only, and only until
    ``expires_at``.
    """

    nonce = models.CharField(max_length=64, unique=True)
    address = models.CharField(max_length=44)
    domain = models.CharField(max_length=255)
    uri = models.CharField(max_length=500)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"SIWS nonce for {self.address} ({'used' if self.used_at else 'fresh'})"
