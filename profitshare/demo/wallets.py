"""The demo's own wallets: creators, subscribers, referrers and the platform's, derived from the
demo seed.

Deterministic (ed25519 seed = SHA-256 of ``quantumvault-demo/{seed}/{role}/{label}``) so a re-run
finds the same world, and so the web server can sign Sign-In With Solana messages for them
without any key being stored. They are demo keys: never use them for anything else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from solders.keypair import Keypair

CREATOR = "creator"
SUBSCRIBER = "subscriber"
REFERRER = "referrer"
PLATFORM = "platform"
DEFAULT_SEED = 1


def demo_enabled() -> bool:
    """True when the demo market's pages and sign-ins are on (the ``QV_DEMO`` setting, from the
    environment; ``make run`` sets it for its own processes). Off by default."""
    return bool(settings.QV_DEMO)


def demo_seed() -> int:
    """The demo seed the web server derives wallets from (``QV_DEMO_SEED``, default 1)."""
    return int(settings.QV_DEMO_SEED)


def keypair(seed: int, role: str, label: str) -> Keypair:
    """The demo keypair of ``role`` (creator / subscriber / referrer / platform) named ``label``
    for ``seed``."""
    digest = hashlib.sha256(f"quantumvault-demo/{seed}/{role}/{label}".encode()).digest()
    return Keypair.from_seed(digest)


@dataclass(frozen=True)
class DemoWallet:
    """A demo wallet: ``role``, ``label`` (a name for people), ``address`` (base58) and ``note``
    (what else it is, e.g. whom it referred; empty when nothing)."""

    role: str
    label: str
    address: str
    note: str = ""


def find_keypair(seed: int, address: str, labels: dict[str, list[str]]) -> Keypair | None:
    """The demo keypair whose address is ``address`` among ``labels`` (role -> labels), or None."""
    for role, names in labels.items():
        for label in names:
            kp = keypair(seed, role, label)
            if str(kp.pubkey()) == address:
                return kp
    return None
