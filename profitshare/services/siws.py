"""Sign-In With Solana (SIWS) for creators and subscribers.

The server issues a challenge for one wallet address: a message with the domain, the URI, a
random server nonce, the time it was issued and its expiry. The wallet signs the message bytes
(the standard ``signMessage``: ed25519 over the UTF-8 text); the server rebuilds the message
from its own record of the nonce and checks the signature with solders. A nonce is fresh only
until its expiry and is good for exactly one verification attempt.
"""

from __future__ import annotations

import secrets
from datetime import UTC, timedelta

from django.db import transaction
from django.utils import timezone
from solders.pubkey import Pubkey
from solders.signature import Signature

from profitshare.models import SiwsNonce
from profitshare.services.errors import InvalidInput

NONCE_TTL = timedelta(minutes=5)
STATEMENT = "Sign in to QuantumVault to see your profit-share earnings and trades."
VERSION = "1"
CHAIN_ID = "mainnet"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def parse_wallet_address(address: str) -> str:
    """The canonical base58 form of a Solana address. Raises ``InvalidInput``."""
    address = (address or "").strip()
    try:
        return str(Pubkey.from_string(address))
    except ValueError as exc:
        raise InvalidInput("address", "not a Solana address (base58, 32 bytes)") from exc


def build_message(challenge: SiwsNonce) -> str:
    """The exact text the wallet signs for ``challenge`` (SIWS / CAIP-122 layout)."""
    return (
        f"{challenge.domain} wants you to sign in with your Solana account:\n"
        f"{challenge.address}\n"
        f"\n"
        f"{STATEMENT}\n"
        f"\n"
        f"URI: {challenge.uri}\n"
        f"Version: {VERSION}\n"
        f"Chain ID: {CHAIN_ID}\n"
        f"Nonce: {challenge.nonce}\n"
        f"Issued At: {challenge.issued_at.astimezone(UTC).strftime(_TIME_FORMAT)}\n"
        f"Expiration Time: {challenge.expires_at.astimezone(UTC).strftime(_TIME_FORMAT)}"
    )


def prune_expired_nonces(now=None) -> int:
    """Delete every nonce past its expiry (a used or expired nonce can never sign anyone in);
    returns how many rows went. Run by the ``qv-siws-prune`` schedule."""
    deleted, _ = SiwsNonce.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted


def issue_challenge(*, address: str, domain: str, uri: str, now=None) -> SiwsNonce:
    """Record a fresh nonce for ``address`` on ``domain`` and return it (build the message
    with ``build_message``); the ``qv-siws-prune`` schedule deletes expired nonces. How often a
    client may ask is limited by the sign-in view (``QV_SIGNIN_CHALLENGE_RATE``).
    Raises ``InvalidInput`` for an address that is not a Solana public key."""
    address = parse_wallet_address(address)
    now = (now or timezone.now()).replace(microsecond=0)
    return SiwsNonce.objects.create(
        nonce=secrets.token_urlsafe(24),
        address=address,
        domain=domain,
        uri=uri,
        issued_at=now,
        expires_at=now + NONCE_TTL,
    )


def verify_sign_in(*, nonce: str, signature: str, domain: str, now=None) -> str:
    """Check a signed challenge and return the wallet address it proves.

    ``signature``: base58 ed25519 signature of ``build_message`` for that nonce. The nonce must
    exist, be unused, unexpired and issued for ``domain`` (the host the browser is on). The
    nonce is consumed by this call whatever the outcome. Raises ``InvalidInput``.
    """
    now = now or timezone.now()
    try:
        parsed = Signature.from_string((signature or "").strip())
    except ValueError as exc:
        raise InvalidInput("signature", "not a base58 ed25519 signature") from exc
    with transaction.atomic():
        challenge = SiwsNonce.objects.select_for_update().filter(nonce=(nonce or "").strip()).first()
        if challenge is None:
            raise InvalidInput("nonce", "unknown sign-in request; start again")
        if challenge.used_at is not None:
            raise InvalidInput("nonce", "this sign-in request was already used; start again")
        challenge.used_at = now
        challenge.save(update_fields=["used_at"])
    if challenge.expires_at <= now:
        raise InvalidInput("nonce", "this sign-in request expired; start again")
    if challenge.domain != domain:
        raise InvalidInput("nonce", "this sign-in request was made for another site")
    message = build_message(challenge).encode("utf-8")
    if not parsed.verify(Pubkey.from_string(challenge.address), message):
        raise InvalidInput("signature", "the signature does not match this wallet and message")
    return challenge.address
