"""POST /subscriptions: 201 with a new agent wallet (key encrypted at rest), identical replay
200, conflicting replay 409, unknown bot 404, bad input 422; nothing written on refusal."""

from __future__ import annotations

import pytest

from profitshare.chain import keys
from profitshare.models import AgentWallet, AuditEvent, Subscription
from tests.api.conftest import bot_body, db_state, new_address, subscription_body

pytestmark = pytest.mark.django_db


def test_subscribe_snapshots_terms_and_creates_an_agent_wallet(api, bot):
    body = subscription_body(bot["bot_id"], drift_subaccount_id=3)
    response = api.post("/api/v1/subscriptions", body)
    assert response.status_code == 201
    data = response.json()
    assert set(data) == {"subscription_id", "agent_wallet"}
    sub = Subscription.objects.select_related("agent_wallet").get(subscription_id="sub-1")
    assert data == {"subscription_id": "sub-1", "agent_wallet": sub.agent_wallet.pubkey}
    assert (sub.subscriber_wallet, sub.drift_subaccount_id, sub.profit_share_bps, sub.policy) == (
        body["subscriber_wallet"], 3, 1_000, "per_trade",
    )
    # the key is stored encrypted, decrypts to the returned public key and is never returned
    secret = bytes(sub.agent_wallet.encrypted_secret)
    assert str(keys.decrypt_keypair(secret).pubkey()) == data["agent_wallet"]
    assert secret.decode() not in response.content.decode()
    assert AuditEvent.objects.get(entity="subscription", entity_id="sub-1").actor == "api:platform"


def test_identical_replay_is_200_with_the_same_body_and_no_new_rows(api, bot):
    body = subscription_body(bot["bot_id"])
    first = api.post("/api/v1/subscriptions", body)
    before = db_state()
    again = api.post("/api/v1/subscriptions", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert db_state() == before
    assert AgentWallet.objects.count() == 1


@pytest.mark.parametrize(
    "changes",
    [{"drift_subaccount_id": 1}, {"subscriber_wallet": new_address()}, {"bot_id": "bot-2"}],
)
def test_same_id_with_other_fields_is_409_and_writes_nothing(api, bot, changes):
    api.post("/api/v1/bots", bot_body(bot_id="bot-2"))
    body = subscription_body(bot["bot_id"])
    assert api.post("/api/v1/subscriptions", body).status_code == 201
    before = db_state()
    response = api.post("/api/v1/subscriptions", {**body, **changes})
    assert response.status_code == 409
    assert "different fields" in response.json()["detail"]
    assert db_state() == before


def test_unknown_bot_is_404_and_writes_nothing(api, bot):
    before = db_state()
    response = api.post("/api/v1/subscriptions", subscription_body("no-such-bot"))
    assert response.status_code == 404
    assert response.json() == {"detail": "bot 'no-such-bot' not found"}
    assert db_state() == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"drift_subaccount_id": -1}, "drift_subaccount_id"),
        ({"drift_subaccount_id": 65_536}, "drift_subaccount_id"),
        ({"drift_subaccount_id": 1.0}, "drift_subaccount_id"),
        ({"drift_subaccount_id": "0"}, "drift_subaccount_id"),
        ({"subscriber_wallet": "0OIl0OIl"}, "subscriber_wallet"),
        ({"subscription_id": ""}, "subscription_id"),
        ({"bot_id": None}, "bot_id"),
    ],
)
def test_bad_input_is_422_and_writes_nothing(api, bot, changes, field):
    before = db_state()
    response = api.post("/api/v1/subscriptions", {**subscription_body(bot["bot_id"]), **changes})
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["detail"]] == [field]
    assert db_state() == before
