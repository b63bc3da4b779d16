"""The split of a creator's share into legs (docs/design.md, "Splits add up"): floors, the
creator's remainder, a wallet earning at most once, each level keeping its own rate. Examples
first, then properties over generated shares and terms."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair

from profitshare.models import LegRole
from profitshare.services.splits import NO_SPLITS, Leg, SplitTerms, split_share, terms_of

CREATOR, TREASURY, L1, L2, L3 = (str(Keypair().pubkey()) for _ in range(5))
DEFAULT = SplitTerms(platform_fee_bps=0, treasury="", referral=((L1, 500), (L2, 200), (L3, 100)))


def amounts(legs: list[Leg]) -> dict[str, int]:
    return {leg.role.value: leg.amount for leg in legs}


def test_the_default_rates_on_a_share_of_one_usdc():
    legs = split_share(1_000_000, creator=CREATOR, terms=DEFAULT)
    assert legs == [
        Leg(LegRole.CREATOR, CREATOR, None, 920_000),
        Leg(LegRole.REFERRAL_1, L1, 500, 50_000),
        Leg(LegRole.REFERRAL_2, L2, 200, 20_000),
        Leg(LegRole.REFERRAL_3, L3, 100, 10_000),
    ]


def test_each_leg_floors_and_the_creator_takes_the_remainder():
    terms = SplitTerms(platform_fee_bps=250, treasury=TREASURY, referral=DEFAULT.referral)
    # 12_345 x 250 / 10_000 = 308.6; x 500 = 617.25; x 200 = 246.9; x 100 = 123.45
    assert amounts(split_share(12_345, creator=CREATOR, terms=terms)) == {
        "creator": 12_345 - 308 - 617 - 246 - 123, "platform": 308, "referral_1": 617, "referral_2": 246,
        "referral_3": 123,
    }


def test_zero_amount_legs_are_left_out_but_the_creator_leg_stays():
    # 19 x 500 / 10_000 = 0.95: every other leg floors to 0
    assert split_share(19, creator=CREATOR, terms=DEFAULT) == [Leg(LegRole.CREATOR, CREATOR, None, 19)]
    assert split_share(0, creator=CREATOR, terms=DEFAULT) == [Leg(LegRole.CREATOR, CREATOR, None, 0)]
    # 20 x 500 / 10_000 = 1: level 1 earns, levels 2 and 3 floor to 0
    assert amounts(split_share(20, creator=CREATOR, terms=DEFAULT)) == {"creator": 19, "referral_1": 1}


def test_no_splits_pays_the_creator_everything():
    assert split_share(5_000_000, creator=CREATOR, terms=NO_SPLITS) == [Leg(LegRole.CREATOR, CREATOR, None, 5_000_000)]
    assert terms_of({}) is NO_SPLITS


def test_the_creator_in_their_own_chain_earns_no_referral_leg_and_the_next_level_keeps_its_rate():
    terms = SplitTerms(referral=((CREATOR, 500), (L2, 200), (L3, 100)))
    assert split_share(1_000_000, creator=CREATOR, terms=terms) == [
        Leg(LegRole.CREATOR, CREATOR, None, 970_000),  # level 1's 5 % stays with the creator
        Leg(LegRole.REFERRAL_2, L2, 200, 20_000),  # level 2 earns level 2's rate, not level 1's
        Leg(LegRole.REFERRAL_3, L3, 100, 10_000),
    ]


def test_a_repeat_up_the_chain_earns_once_at_its_first_level():
    terms = SplitTerms(referral=((L1, 500), (L2, 200), (L1, 100)))
    assert amounts(split_share(1_000_000, creator=CREATOR, terms=terms)) == {
        "creator": 930_000, "referral_1": 50_000, "referral_2": 20_000,
    }


def test_the_treasury_in_the_chain_earns_only_the_platform_fee():
    terms = SplitTerms(platform_fee_bps=1_000, treasury=L2, referral=DEFAULT.referral)
    assert split_share(1_000_000, creator=CREATOR, terms=terms) == [
        Leg(LegRole.CREATOR, CREATOR, None, 840_000),
        Leg(LegRole.PLATFORM, L2, 1_000, 100_000),
        Leg(LegRole.REFERRAL_1, L1, 500, 50_000),
        Leg(LegRole.REFERRAL_3, L3, 100, 10_000),
    ]


def test_a_level_at_zero_bps_reserves_nothing():
    terms = SplitTerms(platform_fee_bps=0, treasury=L1, referral=((L1, 500),))
    assert amounts(split_share(1_000_000, creator=CREATOR, terms=terms)) == {"creator": 950_000, "referral_1": 50_000}
    terms = SplitTerms(referral=((L1, 0), (L1, 200)))
    assert amounts(split_share(1_000_000, creator=CREATOR, terms=terms)) == {"creator": 980_000, "referral_2": 20_000}


def test_the_creator_as_treasury_takes_no_platform_leg():
    terms = SplitTerms(platform_fee_bps=1_000, treasury=CREATOR, referral=((L1, 500),))
    assert amounts(split_share(1_000_000, creator=CREATOR, terms=terms)) == {"creator": 950_000, "referral_1": 50_000}


@pytest.mark.parametrize("share", [-1, 1.5, True, "100", None])
def test_a_share_that_is_not_a_non_negative_integer_is_refused(share):
    with pytest.raises(ValueError, match="share must be a non-negative integer"):
        split_share(share, creator=CREATOR, terms=DEFAULT)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"platform_fee_bps": -1, "treasury": TREASURY}, "platform_fee_bps must be a non-negative integer"),
        ({"platform_fee_bps": 1.0, "treasury": TREASURY}, "platform_fee_bps must be a non-negative integer"),
        ({"platform_fee_bps": True, "treasury": TREASURY}, "platform_fee_bps must be a non-negative integer"),
        ({"platform_fee_bps": 10}, "a platform fee needs a treasury wallet"),
        ({"referral": ((L1, 1), (L2, 1), (L3, 1), (TREASURY, 1))}, "at most 3 referral levels"),
        ({"referral": ((L1, -5),)}, "a referral level is"),
        ({"referral": (("", 5),)}, "a referral level is"),
        ({"platform_fee_bps": 5_000, "treasury": TREASURY, "referral": ((L1, 5_000),)}, "add up to 10000 bps"),
    ],
)
def test_terms_that_could_leave_the_creator_nothing_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SplitTerms(**kwargs)


def test_a_snapshot_reads_back_as_the_same_terms():
    terms = SplitTerms(platform_fee_bps=150, treasury=TREASURY, referral=((L1, 500), (L2, 200)))
    assert terms.snapshot() == {"platform_fee_bps": 150, "treasury": TREASURY, "referral": [[L1, 500], [L2, 200]]}
    assert terms_of(terms.snapshot()) == terms
    with pytest.raises(ValueError, match="add up to"):
        terms_of({"platform_fee_bps": 0, "treasury": "", "referral": [[L1, 10_000]]})


# --- properties ---------------------------------------------------------------------------------
WALLETS = st.sampled_from([CREATOR, TREASURY, L1, L2, L3])


@st.composite
def split_terms(draw) -> SplitTerms:
    """Any terms the settings could give, with wallets drawn from a small pool (so repeats, the
    creator and the treasury show up in chains)."""
    levels = draw(st.integers(0, 3))
    budget = 9_999
    fee = draw(st.integers(0, budget))
    budget -= fee
    referral = []
    for _ in range(levels):
        bps = draw(st.integers(0, budget))
        budget -= bps
        referral.append((draw(WALLETS), bps))
    return SplitTerms(platform_fee_bps=fee, treasury=draw(WALLETS) if fee else "", referral=tuple(referral))


SHARES = st.one_of(st.integers(0, 100), st.integers(0, 10**15), st.just(10**15))


@settings(max_examples=2_000, deadline=None)
@given(share=SHARES, terms=split_terms())
def test_legs_add_up_to_the_share_and_each_is_floored(share, terms):
    legs = split_share(share, creator=CREATOR, terms=terms)
    assert sum(leg.amount for leg in legs) == share
    creator, *others = legs
    assert (creator.role, creator.wallet, creator.bps) == (LegRole.CREATOR, CREATOR, None)
    assert creator.amount > 0 or share == 0
    for leg in others:
        assert leg.amount == share * leg.bps // 10_000 > 0
    wallets = [leg.wallet for leg in legs]
    assert len(wallets) == len(set(wallets))  # a wallet earns at most once
    roles = [leg.role for leg in others]
    assert roles == sorted(roles, key=list(LegRole).index)  # platform, then levels 1-3, in order
    rates = {role: bps for role, (_, bps) in zip(("referral_1", "referral_2", "referral_3"), terms.referral, strict=False)}
    for leg in others:  # every level keeps its own rate
        assert leg.bps == (terms.platform_fee_bps if leg.role == LegRole.PLATFORM else rates[leg.role.value])


def test_legs_add_up_over_every_share_up_to_a_hundred_thousand():
    terms = SplitTerms(platform_fee_bps=333, treasury=TREASURY, referral=((L1, 777), (L2, 1), (L3, 8_888)))
    for share in range(100_000):
        legs = split_share(share, creator=CREATOR, terms=terms)
        assert sum(leg.amount for leg in legs) == share
        assert legs[0].amount == share - sum(share * leg.bps // 10_000 for leg in legs[1:])
