"""POST /trade-closes and GET /trade-closes/{id}: accepted once (202, payout queued), identical
replay 200 with no new work, conflicting replay 409, refused input 422, unknown 404; the status
follows the distribution through a real payout on the local node."""

from __future__ import annotations

import pytest
from django_q.models import OrmQ
from solders.keypair import Keypair

from profitshare.models import (
    AttemptStatus,
    AuditEvent,
    Distribution,
    PayoutAttempt,
    PublishedBot,
    Subscription,
    TradeClose,
)
from profitshare.tasks import process_distribution_task
from tests.api.conftest import close_body, db_state, new_address
from tests.world import World, fund_payout, pay_legs

pytestmark = pytest.mark.django_db


def test_a_profitable_close_is_accepted_and_its_payout_queued(api, subscription, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/trade-closes", close_body())
    assert response.status_code == 202
    assert response.json() == {"close_id": "close-1", "status": "pending"}
    close = TradeClose.objects.get(close_id="close-1")
    assert (close.realized_pnl, close.kind, close.market_index) == (40_000_000, "full", 0)
    assert close.closed_at.isoformat() == "2026-01-02T03:04:05+00:00"
    dist = Distribution.objects.get(close=close)
    assert (dist.share, dist.owed, dist.paid, dist.status) == (4_000_000, 4_000_000, 0, "pending")
    tasks = [q.task for q in OrmQ.objects.all()]
    assert [(t["func"], t["args"]) for t in tasks] == [("profitshare.tasks.process_distribution_task", (dist.pk,))]
    assert AuditEvent.objects.get(entity="close", entity_id="close-1").actor == "api:platform"


def test_a_losing_close_owes_nothing(api, subscription, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/trade-closes", close_body(realized_pnl=-7_000_000, kind="partial"))
    assert response.status_code == 202
    assert response.json() == {"close_id": "close-1", "status": "nothing_owed"}
    assert TradeClose.objects.get().realized_pnl == -7_000_000
    assert not Distribution.objects.exists()
    assert not OrmQ.objects.exists()
    status = api.get("/api/v1/trade-closes/close-1")
    assert status.status_code == 200
    assert status.json() == {
        "close_id": "close-1", "status": "nothing_owed", "share": 0, "paid": 0, "owed": 0, "carried": 0,
        "signatures": [], "legs": [],
    }


def test_identical_replay_is_200_same_body_no_new_work(api, subscription, django_capture_on_commit_callbacks):
    body = close_body(kind="flip")
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/api/v1/trade-closes", body)
    before = db_state()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = api.post("/api/v1/trade-closes", body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == first.json()
    assert callbacks == []
    assert db_state() == before
    assert OrmQ.objects.count() == 1


def test_the_same_instant_in_another_spelling_is_a_replay(api, subscription):
    assert api.post("/api/v1/trade-closes", close_body(closed_at="2026-01-02T03:04:05Z")).status_code == 202
    assert api.post("/api/v1/trade-closes", close_body(closed_at="2026-01-02T03:04:05+00:00")).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [{"realized_pnl": 40_000_001}, {"kind": "partial"}, {"market_index": 1}, {"closed_at": "2026-01-02T03:04:06+00:00"}],
)
def test_same_close_id_with_another_body_is_409_and_writes_nothing(api, subscription, changes):
    assert api.post("/api/v1/trade-closes", close_body()).status_code == 202
    before = db_state()
    response = api.post("/api/v1/trade-closes", close_body(**changes))
    assert response.status_code == 409
    assert "different body" in response.json()["detail"]
    assert db_state() == before


def test_unknown_subscription_is_404_and_writes_nothing(api, subscription):
    before = db_state()
    response = api.post("/api/v1/trade-closes", close_body(subscription_id="sub-404"))
    assert response.status_code == 404
    assert response.json() == {"detail": "subscription 'sub-404' not found"}
    assert db_state() == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"realized_pnl": 1.5}, "realized_pnl"),
        ({"realized_pnl": 1.0}, "realized_pnl"),
        ({"realized_pnl": "1.5"}, "realized_pnl"),
        ({"realized_pnl": "15"}, "realized_pnl"),
        ({"realized_pnl": 2**63}, "realized_pnl"),
        ({"realized_pnl": None}, "realized_pnl"),
        ({"kind": "liquidation"}, "kind"),
        ({"kind": "FULL"}, "kind"),
        ({"closed_at": "yesterday"}, "closed_at"),
        ({"closed_at": "2026-13-40T00:00:00Z"}, "closed_at"),
        ({"closed_at": "2026-01-02T03:04:05"}, "closed_at"),
        ({"closed_at": 1767322245}, "closed_at"),
        ({"market_index": -1}, "market_index"),
        ({"market_index": 65_536}, "market_index"),
        ({"close_id": ""}, "close_id"),
        ({"extra": "field"}, "extra"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_writes_nothing(api, subscription, changes, field):
    before = db_state()
    response = api.post("/api/v1/trade-closes", close_body(**changes))
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["detail"]] == [field]
    assert db_state() == before


def test_pnl_up_to_ten_to_the_fifteen_base_units_is_accepted(api, subscription):
    assert api.post("/api/v1/trade-closes", close_body("c-min", realized_pnl=-(10**15))).status_code == 202
    assert api.post("/api/v1/trade-closes", close_body("c-big", realized_pnl=10**15)).status_code == 202
    assert TradeClose.objects.get(close_id="c-min").realized_pnl == -(10**15)


def test_unknown_close_is_404(api):
    response = api.get("/api/v1/trade-closes/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "close 'nope' not found"}


def test_status_follows_a_real_payout_to_paid_with_its_signature(api, subscription, chain, django_capture_on_commit_callbacks):
    """End to end on the local node: the agent has SOL and Drift collateral, the close is
    reported, the queued task runs (as a worker would), the creator is paid on chain."""
    agent = subscription["agent_wallet"]
    chain.rpc("requestAirdrop", agent, 100_000_000)
    chain.rpc("localnet_driftDeposit", agent, 0, 1_000_000_000)
    chain.rpc("localnet_driftRealizePnl", agent, 0, 40_000_000)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/v1/trade-closes", close_body()).status_code == 202
    pending = api.get("/api/v1/trade-closes/close-1").json()
    creator = PublishedBot.objects.get(bot_id="bot-1").creator.address
    assert pending == {
        "close_id": "close-1", "status": "pending", "share": 4_000_000, "paid": 0, "owed": 4_000_000,
        "carried": 0, "signatures": [],
        "legs": [{"role": "creator", "wallet": creator, "amount": 4_000_000, "paid": 0, "owed": 4_000_000,
                  "carried": 0, "signature": None}],
    }
    (queued,) = OrmQ.objects.all()
    assert process_distribution_task(*queued.task["args"]) == 1  # one distribution in the batch
    response = api.get("/api/v1/trade-closes/close-1")
    assert response.status_code == 200
    data = response.json()
    signature = PayoutAttempt.objects.get(status="landed").signature
    assert data == {
        "close_id": "close-1", "status": "paid", "share": 4_000_000, "paid": 4_000_000, "owed": 0,
        "carried": 0, "signatures": [signature],
        "legs": [{"role": "creator", "wallet": creator, "amount": 4_000_000, "paid": 4_000_000, "owed": 0,
                  "carried": 0, "signature": signature}],
    }
    status = chain.rpc("getSignatureStatuses", [signature])["value"][0]
    assert status is not None and status["err"] is None


# --- the legs of a close's share (docs/design.md, "Splits add up") --------------------------------
def leg(role, wallet, amount, *, paid=0, signature=None) -> dict:
    return {"role": role, "wallet": wallet, "amount": amount, "paid": paid, "owed": amount - paid, "carried": 0,
            "signature": signature}


@pytest.fixture
def split_close(api, subscription, settings):
    """A 1.5 % platform fee, the default referral rates (5 / 2 / 1 %), a creator referred three
    levels up (linked through the API), then a 40 USDC close: a 4 USDC share. Returns
    ``(creator, treasury, [level 1, level 2, level 3])``."""
    treasury = new_address()
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = 150, treasury
    settings.QV_REFERRAL_BPS = (500, 200, 100)
    creator = PublishedBot.objects.get(bot_id="bot-1").creator.address
    chain = [new_address() for _ in range(3)]
    for wallet, referrer in zip([creator, *chain[:2]], chain, strict=True):
        assert api.post("/api/v1/referrals", {"wallet": wallet, "referrer_wallet": referrer}).status_code == 201
    assert api.post("/api/v1/trade-closes", close_body()).status_code == 202
    return creator, treasury, chain


def test_a_split_close_lists_its_legs_adding_up_to_the_share(api, split_close):
    creator, treasury, (l1, l2, l3) = split_close
    data = api.get("/api/v1/trade-closes/close-1").json()
    assert (data["share"], data["paid"], data["owed"], data["carried"]) == (4_000_000, 0, 4_000_000, 0)
    assert data["legs"] == [
        leg("creator", creator, 3_620_000), leg("platform", treasury, 60_000), leg("referral_1", l1, 200_000),
        leg("referral_2", l2, 80_000), leg("referral_3", l3, 40_000),
    ]
    assert sum(x["amount"] for x in data["legs"]) == data["share"]


def test_each_leg_names_the_last_landed_payout_that_paid_it(api, split_close, chain, gateway):
    """Two real payouts on the local node: the creator's and the platform's legs in one, the
    referral legs in the next; an expired attempt naming every leg counts for none."""
    creator, treasury, (l1, l2, l3) = split_close
    sub = Subscription.objects.get(subscription_id="sub-1")
    chain.rpc("requestAirdrop", sub.agent_wallet.pubkey, 100_000_000)
    world = World(chain, sub)
    dist = Distribution.objects.get(close__close_id="close-1")
    legs = fund_payout(chain, world, dist)
    first = pay_legs(gateway, world, dist, legs[:2])
    second = pay_legs(gateway, world, Distribution.objects.get(pk=dist.pk), legs[2:])
    PayoutAttempt.objects.create(
        distribution=dist, agent_wallet=sub.agent_wallet, amount=dist.share, legs=[[x.pk, x.wallet, x.amount] for x in legs],
        signature=str(Keypair().sign_message(b"expired")), raw_transaction=b"", blockhash=new_address(), last_valid_block_height=1,
        destination_owner=creator, destination_ata=new_address(), status=AttemptStatus.EXPIRED,
    )
    data = api.get("/api/v1/trade-closes/close-1").json()
    assert (data["status"], data["paid"], data["owed"]) == ("paid", 4_000_000, 0)
    assert data["signatures"] == [first.signature, second.signature]
    assert data["legs"] == [
        leg("creator", creator, 3_620_000, paid=3_620_000, signature=first.signature),
        leg("platform", treasury, 60_000, paid=60_000, signature=first.signature),
        leg("referral_1", l1, 200_000, paid=200_000, signature=second.signature),
        leg("referral_2", l2, 80_000, paid=80_000, signature=second.signature),
        leg("referral_3", l3, 40_000, paid=40_000, signature=second.signature),
    ]


def test_a_close_without_splits_has_one_creator_leg(api, subscription, settings, chain, gateway):
    settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY = 0, ""
    assert api.post("/api/v1/trade-closes", close_body()).status_code == 202  # nobody referred the creator
    data = api.get("/api/v1/trade-closes/close-1").json()
    creator = PublishedBot.objects.get(bot_id="bot-1").creator.address
    assert data["legs"] == [leg("creator", creator, 4_000_000)]

    # paid by an attempt recorded without legs (none is, after the data migration): the creator's leg
    sub = Subscription.objects.get(subscription_id="sub-1")
    chain.rpc("requestAirdrop", sub.agent_wallet.pubkey, 100_000_000)
    world, dist = World(chain, sub), Distribution.objects.get(close__close_id="close-1")
    attempt = pay_legs(gateway, world, dist, fund_payout(chain, world, dist))
    PayoutAttempt.objects.filter(pk=attempt.pk).update(legs=[])
    data = api.get("/api/v1/trade-closes/close-1").json()
    assert data["legs"] == [leg("creator", creator, 4_000_000, paid=4_000_000, signature=attempt.signature)]
