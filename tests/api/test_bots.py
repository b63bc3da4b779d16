"""POST /bots: publish (201), update (200), refused input (422, nothing written)."""

from __future__ import annotations

import pytest

from profitshare.models import AuditEvent, PublishedBot, Subscription
from tests.api.conftest import bot_body, db_state, new_address, subscription_body

pytestmark = pytest.mark.django_db


def test_publish_creates_the_bot_and_its_creator(api):
    body = bot_body(policy="high_water_mark", profit_share_bps=250)
    response = api.post("/api/v1/bots", body)
    assert response.status_code == 201
    assert response.json() == body
    bot = PublishedBot.objects.select_related("creator").get(bot_id="bot-1")
    assert (bot.creator.address, bot.name, bot.profit_share_bps, bot.policy) == (
        body["creator_wallet"], "Momentum", 250, "high_water_mark",
    )
    event = AuditEvent.objects.get(entity="bot", entity_id="bot-1")
    assert (event.actor, event.to_status) == ("api:platform", "published")


def test_policy_defaults_to_per_trade(api):
    body = bot_body()
    del body["policy"]
    response = api.post("/api/v1/bots", body)
    assert response.status_code == 201
    assert response.json()["policy"] == "per_trade"


def test_publishing_again_updates_with_200_and_a_decrease_reaches_subscribers(api):
    body = bot_body(profit_share_bps=800)
    assert api.post("/api/v1/bots", body).status_code == 201
    assert api.post("/api/v1/subscriptions", subscription_body()).status_code == 201
    response = api.post("/api/v1/bots", {**body, "name": "Momentum v2", "profit_share_bps": 500})
    assert response.status_code == 200
    assert response.json() == {**body, "name": "Momentum v2", "profit_share_bps": 500}
    assert PublishedBot.objects.count() == 1
    assert PublishedBot.objects.get().name == "Momentum v2"
    assert Subscription.objects.get().profit_share_bps == 500


def test_zero_and_ten_percent_are_accepted(api):
    assert api.post("/api/v1/bots", bot_body(bot_id="a", profit_share_bps=0)).status_code == 201
    assert api.post("/api/v1/bots", bot_body(bot_id="b", profit_share_bps=1_000)).status_code == 201


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"profit_share_bps": 1001}, "profit_share_bps"),
        ({"profit_share_bps": -1}, "profit_share_bps"),
        ({"profit_share_bps": 10.5}, "profit_share_bps"),
        ({"profit_share_bps": "500"}, "profit_share_bps"),
        ({"profit_share_bps": True}, "profit_share_bps"),
        ({"creator_wallet": "not-a-base58-address!"}, "creator_wallet"),
        ({"creator_wallet": "0OIl" * 11}, "creator_wallet"),
        ({"creator_wallet": "abc"}, "creator_wallet"),
        ({"creator_wallet": 42}, "creator_wallet"),
        ({"policy": "whatever"}, "policy"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"bot_id": ""}, "bot_id"),
        ({"bot_id": "x" * 65}, "bot_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_writes_nothing(api, changes, field):
    before = db_state()
    response = api.post("/api/v1/bots", bot_body(**changes))
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert [e["field"] for e in detail] == [field]
    assert detail[0]["message"]
    assert db_state() == before


def test_invalid_creator_wallet_is_refused_with_the_service_message(api):
    response = api.post("/api/v1/bots", bot_body(creator_wallet="0OIl" * 11))
    assert response.status_code == 422
    assert response.json()["detail"][0]["message"].startswith("not a valid Solana address")


def test_a_bad_update_leaves_the_bot_unchanged(api):
    body = bot_body(profit_share_bps=300)
    api.post("/api/v1/bots", body)
    before = db_state()
    assert api.post("/api/v1/bots", {**body, "profit_share_bps": 1001}).status_code == 422
    # the creator of a bot cannot change: the bot's state refuses it (409), not the input
    response = api.post("/api/v1/bots", {**body, "creator_wallet": new_address()})
    assert response.status_code == 409
    assert "creator wallet cannot change" in response.json()["detail"]
    assert db_state() == before


@pytest.mark.parametrize(
    ("raw", "field"),
    [(b"{not json", "body"), (b"[1, 2]", "body"), (b"", "body"), (b'"text"', "body")],
)
def test_malformed_bodies_are_422_and_write_nothing(api, raw, field):
    before = db_state()
    response = api.post("/api/v1/bots", raw=raw)
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["detail"]] == [field]
    assert db_state() == before


def test_missing_fields_are_each_named(api):
    response = api.post("/api/v1/bots", {"bot_id": "bot-1"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert fields == {"creator_wallet", "name", "profit_share_bps"}
