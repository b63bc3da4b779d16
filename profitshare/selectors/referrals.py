"""Reads of the referral links (docs/design.md, "The referral chain"): a wallet's chain of
referrers and the top of its chain."""

from __future__ import annotations

from django.db import connection

from profitshare.models import Referral

#: Levels of a creator's chain that earn (level 1: who referred the creator).
REFERRAL_LEVELS = 3
#: Longest chain ``referral_root`` follows. The links form no cycle, so a walk always ends; the
#: bound only keeps a corrupted table (a cycle written around the service) from looping.
MAX_CHAIN = 100_000


def referral_chain(wallet: str, levels: int = REFERRAL_LEVELS) -> list[str]:
    """The referrers above ``wallet``, nearest first, at most ``levels`` of them:
    ``[who referred wallet, who referred that one, ...]`` (base58 addresses; ``[]`` when nobody
    referred ``wallet``). One statement (a recursive query over ``Referral.wallet``'s unique
    index); ``wallet`` is not validated here (an invalid one simply has no chain)."""
    if levels <= 0:
        return []
    table = connection.ops.quote_name(Referral._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE up(referrer, depth) AS ("
            f" SELECT referrer_wallet, 1 FROM {table} WHERE wallet = %s"
            f" UNION ALL"
            f" SELECT r.referrer_wallet, up.depth + 1 FROM {table} r JOIN up ON r.wallet = up.referrer"
            f" WHERE up.depth < %s"
            f") SELECT referrer FROM up ORDER BY depth",
            [wallet, levels],
        )
        return [row[0] for row in cursor.fetchall()]


def referrer_of(wallet: str) -> str | None:
    """Who referred ``wallet`` (base58), or None."""
    return Referral.objects.filter(wallet=wallet).values_list("referrer_wallet", flat=True).first()


def referral_root(wallet: str) -> str:
    """The top of ``wallet``'s chain: the referrer nobody referred, or ``wallet`` itself when
    nobody referred it. Raises ``RuntimeError`` when the chain is longer than ``MAX_CHAIN``
    (only a cycle written around ``link_referral`` makes one)."""
    chain = referral_chain(wallet, levels=MAX_CHAIN + 1)
    if len(chain) > MAX_CHAIN:
        raise RuntimeError(f"the referral chain of {wallet} is longer than {MAX_CHAIN} links (a cycle?)")
    return chain[-1] if chain else wallet
