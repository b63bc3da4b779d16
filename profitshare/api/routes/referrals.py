"""``POST /referrals`` (record who referred a wallet) and ``GET /referrals/{wallet}`` (its chain)
(platform; docs/design.md, "The referral chain")."""

from __future__ import annotations

from ninja import Router, Status

from profitshare.api.auth import PlatformAuth
from profitshare.api.routes.common import AUTH_ERRORS, actor, refuse_unknown_query
from profitshare.api.schemas import ErrorOut, PathAddress, ReferralIn, ReferralOut
from profitshare.selectors.referrals import referral_chain
from profitshare.services.bots import validate_wallet_address
from profitshare.services.referrals import link_referral

router = Router(tags=["referrals"], auth=PlatformAuth())


def render_referral(wallet: str) -> dict:
    """The ``ReferralOut`` body of ``wallet`` (a valid base58 address)."""
    chain = referral_chain(wallet)
    return {"wallet": wallet, "referrer_wallet": chain[0] if chain else None, "chain": chain}


@router.post("/referrals", response={200: ReferralOut, 201: ReferralOut, 409: ErrorOut, **AUTH_ERRORS})
def link(request, payload: ReferralIn):
    """Record that ``referrer_wallet`` referred ``wallet`` (201); the same link again: 200, same
    body. A wallet's referrer never changes: another referrer for a wallet that has one is 409.
    422 naming the field for an invalid address, a self-referral or a link that would make a
    cycle (``referrer_wallet`` was itself referred, up its chain, by ``wallet``). Nothing is
    written on any 4xx. The answer is the wallet's chain after the link, as ``GET`` gives it."""
    refuse_unknown_query(request)
    referral, created = link_referral(payload.wallet, payload.referrer_wallet, actor=actor(request))
    return Status(201 if created else 200, render_referral(referral.wallet))


@router.get("/referrals/{wallet}", response={200: ReferralOut, **AUTH_ERRORS})
def show(request, wallet: PathAddress):
    """Who referred ``wallet`` and its chain of referrers, nearest first: ``[level 1, level 2,
    level 3]``, the levels whose referral legs a creator's shares pay. A wallet nobody referred
    answers ``referrer_wallet: null, chain: []``. 422 for an invalid address."""
    refuse_unknown_query(request)
    return render_referral(validate_wallet_address("wallet", wallet))
