"""POST /referrals (201 / 200 / 409 / 422 naming the field, nothing written on any 4xx) and
GET /referrals/{wallet} (the chain, three levels)."""

from __future__ import annotations

import pytest

from profitshare.models import AuditEvent, Referral
from tests.api.conftest import ADMIN_SECRET, db_state, new_address

pytestmark = pytest.mark.django_db

PATH = "/api/v1/referrals"


def link(api, wallet: str, referrer: str, **kw):
    return api.post(PATH, {"wallet": wallet, "referrer_wallet": referrer}, **kw)


def test_a_link_is_201_then_200_with_the_chain(api):
    a, b, c = new_address(), new_address(), new_address()
    assert link(api, b, c).status_code == 201
    response = link(api, a, b)
    assert response.status_code == 201, response.content
    assert response.json() == {"wallet": a, "referrer_wallet": b, "chain": [b, c]}
    before = db_state()
    again = link(api, a, b)
    assert again.status_code == 200 and again.json() == response.json()
    assert db_state() == before
    event = AuditEvent.objects.get(entity="referral", entity_id=a)
    assert (event.actor, event.data) == ("api:platform", {"referrer_wallet": b})


def test_another_referrer_is_409_and_writes_nothing(api):
    a, b = new_address(), new_address()
    assert link(api, a, b).status_code == 201
    before = db_state()
    response = link(api, a, new_address())
    assert response.status_code == 409
    assert f"already referred by {b}" in response.json()["detail"]
    assert db_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"wallet": "not-base58!", "referrer_wallet": "VALID"}, "wallet"),
        ({"wallet": "VALID", "referrer_wallet": "abc"}, "referrer_wallet"),
        ({"wallet": "VALID", "referrer_wallet": "1" * 32}, "referrer_wallet"),  # all-zero address
        ({"wallet": "3" * 40, "referrer_wallet": "VALID"}, "wallet"),  # base58, not 32 bytes
        ({"wallet": 5, "referrer_wallet": "VALID"}, "wallet"),
        ({"referrer_wallet": "VALID"}, "wallet"),
        ({"wallet": "VALID", "referrer_wallet": "VALID", "extra": 1}, "extra"),
        ({"wallet": "SAME", "referrer_wallet": "SAME"}, "referrer_wallet"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_writes_nothing(api, body, field):
    same = new_address()
    body = {k: (new_address() if v == "VALID" else same if v == "SAME" else v) for k, v in body.items()}
    before = db_state()
    response = api.post(PATH, body)
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert [e["field"] for e in detail] == [field] and detail[0]["message"]
    assert db_state() == before


def test_a_link_that_would_make_a_cycle_is_422_on_referrer_wallet(api):
    a, b, c = new_address(), new_address(), new_address()
    assert link(api, a, b).status_code == 201
    assert link(api, b, c).status_code == 201
    before = db_state()
    response = link(api, c, a)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["field"] == "referrer_wallet" and "cycle" in error["message"]
    assert db_state() == before


def test_get_answers_three_levels_nearest_first(api):
    chain = [new_address() for _ in range(5)]
    for wallet, referrer in zip(chain, chain[1:], strict=False):
        assert link(api, wallet, referrer).status_code == 201
    response = api.get(f"{PATH}/{chain[0]}")
    assert response.status_code == 200
    assert response.json() == {"wallet": chain[0], "referrer_wallet": chain[1], "chain": chain[1:4]}
    assert api.get(f"{PATH}/{chain[3]}").json()["chain"] == [chain[4]]
    assert api.get(f"{PATH}/{chain[4]}", secret=ADMIN_SECRET).json() == {
        "wallet": chain[4], "referrer_wallet": None, "chain": []}


@pytest.mark.parametrize("wallet", ["not-an-address", "1" * 32, "3" * 40])
def test_get_with_an_invalid_address_is_422(api, wallet):
    response = api.get(f"{PATH}/{wallet}")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == ["wallet"]


def test_unsigned_requests_are_401_and_write_nothing(api):
    before = db_state()
    assert link(api, new_address(), new_address(), secret=None).status_code == 401
    assert api.get(f"{PATH}/{new_address()}", secret=None).status_code == 401
    assert db_state() == before and not Referral.objects.exists()
