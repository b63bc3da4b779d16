"""Linking a wallet to the wallet that referred it (docs/design.md, "The referral chain").

The links form a forest: each wallet has at most one referrer, set once, and no chain of
referrers comes back to where it started. :func:`link_referral` keeps it so under concurrency.
"""

from __future__ import annotations

from django.db import transaction

from profitshare.models import Referral
from profitshare.selectors.referrals import referral_root, referrer_of
from profitshare.services.audit import PLATFORM, record_event
from profitshare.services.bots import validate_wallet_address
from profitshare.services.errors import Conflict, InvalidInput
from profitshare.services.locks import lock_referral_wallets


class InvalidReferralAddress(InvalidInput):
    """``field`` (``wallet`` or ``referrer_wallet``) is not a valid Solana address (422 naming it;
    ``profitshare.chain.addresses.parse_address`` says why)."""


class SelfReferral(InvalidInput):
    """A wallet cannot refer itself (422 on ``referrer_wallet``)."""

    def __init__(self) -> None:
        super().__init__("referrer_wallet", "a wallet cannot refer itself")


class ReferralCycle(InvalidInput):
    """The link would close a cycle: ``wallet`` is already above ``referrer_wallet`` in its chain
    (422 on ``referrer_wallet``)."""

    def __init__(self, wallet: str, referrer_wallet: str) -> None:
        super().__init__(
            "referrer_wallet",
            f"{referrer_wallet} was referred (directly or up its chain) by {wallet}: the link would make a cycle",
        )


class ReferralConflict(Conflict):
    """``wallet`` already has another referrer (409); a referrer once set is never changed.
    ``referrer_wallet``: the one on record."""

    def __init__(self, wallet: str, referrer_wallet: str) -> None:
        super().__init__(f"wallet {wallet} was already referred by {referrer_wallet}; a referrer never changes")
        self.referrer_wallet = referrer_wallet


def link_referral(wallet: str, referrer_wallet: str, *, actor: str = PLATFORM) -> tuple[Referral, bool]:
    """Record that ``referrer_wallet`` referred ``wallet`` (both base58 Solana addresses).

    Returns ``(referral, created)``: ``created`` is False when exactly this link was already
    recorded (nothing written). Raises, with nothing written: ``InvalidReferralAddress`` on
    ``wallet`` or ``referrer_wallet`` (``profitshare.chain.addresses.parse_address`` refused it),
    ``SelfReferral``, ``ReferralConflict`` (``wallet`` has another referrer) or ``ReferralCycle``.
    Writes the link and a ``referral`` audit event in one transaction.

    Concurrency (PostgreSQL): the links form trees, and a link ``wallet -> referrer`` is only
    possible while ``wallet`` is the top of its own tree (it has no referrer yet); it makes a
    cycle exactly when ``wallet`` is the top of the referrer's tree. So the service locks two
    wallets (``lock_referral_wallets``, until commit): ``wallet`` and the top of the referrer's
    chain, then reads that top again and also locks the new top if the chain grew meanwhile.
    Whoever links a wallet holds that wallet's lock, so while both locks are held neither fact
    can change: ``wallet`` keeps no referrer and the top of the referrer's chain stays where it
    is. Two links that could close a cycle together (``a <- b`` and ``b <- a``, or longer) both
    need the same two locks and run one after the other; the second sees the first's link and
    is refused. Links in unrelated trees take unrelated locks and never wait for each other.
    When a chain grows while its top is being locked, the extra lock is taken out of order and
    PostgreSQL may end a deadlock by failing one transaction (the API answers 503; nothing is
    written and the request can be sent again).
    """
    wallet = _address("wallet", wallet)
    referrer_wallet = _address("referrer_wallet", referrer_wallet)
    if wallet == referrer_wallet:
        raise SelfReferral()
    with transaction.atomic():
        _lock_trees(wallet, referrer_wallet)
        existing = referrer_of(wallet)
        if existing is not None:
            if existing != referrer_wallet:
                raise ReferralConflict(wallet, existing)
            return Referral.objects.get(wallet=wallet), False
        if referral_root(referrer_wallet) == wallet:
            raise ReferralCycle(wallet, referrer_wallet)
        referral = Referral.objects.create(wallet=wallet, referrer_wallet=referrer_wallet)
        record_event("referral", wallet, actor=actor, to_status="linked", referrer_wallet=referrer_wallet)
    return referral, True


def _address(field: str, value: object) -> str:
    try:
        return validate_wallet_address(field, value)
    except InvalidInput as exc:
        raise InvalidReferralAddress(exc.field, exc.message) from exc


def _lock_trees(wallet: str, referrer_wallet: str) -> None:
    """Hold the locks of ``wallet`` and of the current top of ``referrer_wallet``'s chain."""
    held: set[str] = set()
    while True:
        wanted = {wallet, referral_root(referrer_wallet)} - held
        if not wanted:
            return
        lock_referral_wallets(sorted(wanted))
        held |= wanted
