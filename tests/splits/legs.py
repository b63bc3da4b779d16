"""What the split-payout tests share: a world with splits on (the ``splits`` fixture, in
conftest), recipients' balances, legs and the transfers of a landed transaction."""

from __future__ import annotations

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from profitshare.models import DistributionLeg, LegRole
from profitshare.services import leg_totals
from profitshare.services.referrals import link_referral
from tests.world import make_world, token_balance

TRANSFER_CHECKED = 12


def wallet() -> Pubkey:
    return Keypair().pubkey()


def split_world(localnet, settings) -> dict:
    """(The ``splits`` fixture.) Splits on: a 1.5 % platform fee and a creator with a full three-level chain, every
    recipient holding a USDC token account (1 base unit in it). ``splits["keys"]``: each
    recipient's keypair by role."""
    keys = {role: Keypair() for role in (LegRole.PLATFORM, LegRole.REFERRAL_1, LegRole.REFERRAL_2, LegRole.REFERRAL_3)}
    treasury, l1, l2, l3 = (key.pubkey() for key in keys.values())
    settings.QV_REFERRAL_BPS = (500, 200, 100)
    settings.QV_PLATFORM_FEE_BPS = 150
    settings.QV_PLATFORM_TREASURY = str(treasury)
    for owner in (treasury, l1, l2, l3):
        localnet.rpc("localnet_fundUsdc", str(owner), 1)

    def world(**kwargs):
        made = make_world(localnet, **kwargs)
        creator = str(made.creator)
        for who, referrer in ((creator, l1), (str(l1), l2), (str(l2), l3)):
            if who == creator or not _has_referrer(who):
                link_referral(who, str(referrer))
        return made

    return {"world": world, "keys": keys, LegRole.PLATFORM: treasury, LegRole.REFERRAL_1: l1, LegRole.REFERRAL_2: l2,
            LegRole.REFERRAL_3: l3}


def _has_referrer(wallet_address: str) -> bool:
    from profitshare.models import Referral

    return Referral.objects.filter(wallet=wallet_address).exists()


def balances(localnet, splits, world) -> dict[str, int]:
    owners = {LegRole.CREATOR: world.creator, **{role: splits[role] for role in (
        LegRole.PLATFORM, LegRole.REFERRAL_1, LegRole.REFERRAL_2, LegRole.REFERRAL_3)}}
    return {role: token_balance(localnet, owner) for role, owner in owners.items()}


def legs_of(distribution) -> dict[str, tuple[int, int, int, int]]:
    """``{role: (amount, paid, owed, carried)}``."""
    return {
        leg.role: (leg.amount, leg.paid, leg.owed, leg.carried)
        for leg in DistributionLeg.objects.filter(distribution=distribution)
    }


def transfers_in(localnet, signature: str) -> list[int]:
    """The amounts of the SPL ``TransferChecked`` instructions of a landed transaction."""
    import base58

    tx = localnet.rpc("getTransaction", signature, {"encoding": "json"})
    message = tx["transaction"]["message"]
    amounts = []
    for ix in message["instructions"]:
        data = base58.b58decode(ix["data"])
        if message["accountKeys"][ix["programIdIndex"]] == str(TOKEN_PROGRAM_ID) and data[:1] == bytes([TRANSFER_CHECKED]):
            amounts.append(int.from_bytes(data[1:9], "little"))
    return amounts


# 10 % of a 100 USDC profit = 10 USDC: 1.5 % platform, 5 / 2 / 1 % referrals, the rest the creator's
SHARE = 10_000_000
EXPECTED = {
    LegRole.CREATOR: 9_050_000, LegRole.PLATFORM: 150_000, LegRole.REFERRAL_1: 500_000,
    LegRole.REFERRAL_2: 200_000, LegRole.REFERRAL_3: 100_000,
}


def assert_legs_add_up(distribution) -> None:
    """The distribution's amounts are the sums over its legs, and the legs' running totals are
    the sums over every leg."""
    distribution.refresh_from_db()
    legs = DistributionLeg.objects.filter(distribution=distribution)
    for field in ("paid", "owed", "carried", "voided", "carry_in"):
        assert getattr(distribution, field) == sum(getattr(leg, field) for leg in legs), field
    assert distribution.share == sum(leg.amount for leg in legs)
    assert leg_totals.rollup_sums() == leg_totals.ledger_sums()
