"""HMAC signing: missing, wrong, stale, future and cross-secret requests are refused (401 / 403)
and write nothing; the admin secret also opens platform routes."""

from __future__ import annotations

import json
import time

import pytest

from tests.api.conftest import ADMIN_SECRET, PLATFORM_SECRET, bot_body, db_state, hmac_hex, make_iou

pytestmark = pytest.mark.django_db


def signed_headers(secret, timestamp, body: bytes) -> dict:
    return {"X-QV-Timestamp": str(timestamp), "X-QV-Signature": hmac_hex(secret, timestamp, body)}


def refused_cases(body: bytes) -> dict:
    now = int(time.time())
    return {
        "no headers": {},
        "no signature": {"X-QV-Timestamp": str(now)},
        "no timestamp": {"X-QV-Signature": hmac_hex(PLATFORM_SECRET, now, body)},
        "wrong secret": signed_headers("not-the-secret", now, body),
        "garbage signature": {"X-QV-Timestamp": str(now), "X-QV-Signature": "zz" * 32},
        "signature of another body": signed_headers(PLATFORM_SECRET, now, body + b" "),
        "signature for another timestamp": {
            "X-QV-Timestamp": str(now),
            "X-QV-Signature": hmac_hex(PLATFORM_SECRET, now - 1, body),
        },
        "stale": signed_headers(PLATFORM_SECRET, now - 301, body),
        "future": signed_headers(PLATFORM_SECRET, now + 301, body),
        "non-numeric timestamp": signed_headers(PLATFORM_SECRET, "yesterday", body),
        "non-ascii signature": {"X-QV-Timestamp": str(now), "X-QV-Signature": "é" * 64},
    }


@pytest.mark.parametrize("case", list(refused_cases(b"")))
def test_unsigned_or_badly_signed_post_is_401_and_writes_nothing(api, case):
    raw = json.dumps(bot_body()).encode()
    before = db_state()
    response = api.post("/api/v1/bots", raw=raw, headers=refused_cases(raw)[case])
    assert response.status_code == 401, (case, response.content)
    assert isinstance(response.json()["detail"], str)
    assert db_state() == before


@pytest.mark.parametrize("case", list(refused_cases(b"")))
def test_unsigned_or_badly_signed_get_is_401(api, subscription, case):
    response = api.get("/api/v1/ious", headers=refused_cases(b"")[case])
    assert response.status_code == 401, (case, response.content)
    response = api.get("/api/v1/subscriptions/sub-1/guard", headers=refused_cases(b"")[case])
    assert response.status_code == 401, (case, response.content)


def test_401_comes_before_validation(api):
    """An unsigned malformed body is refused for its signature, not parsed."""
    response = api.post("/api/v1/bots", {"profit_share_bps": "lots"}, secret=None)
    assert response.status_code == 401


def test_timestamps_within_the_window_are_accepted(api):
    now = int(time.time())
    assert api.post("/api/v1/bots", bot_body(bot_id="past"), timestamp=now - 290).status_code == 201
    assert api.post("/api/v1/bots", bot_body(bot_id="future"), timestamp=now + 290).status_code == 201


def test_the_skew_window_follows_the_setting(api, settings):
    settings.QV_INTAKE_MAX_SKEW_SECONDS = 10
    response = api.post("/api/v1/bots", bot_body(), timestamp=int(time.time()) - 30)
    assert response.status_code == 401


def test_an_empty_secret_setting_authenticates_nothing(api, settings):
    settings.QV_INTAKE_SECRET = ""
    assert api.post("/api/v1/bots", bot_body(), secret="").status_code == 401


def test_admin_secret_also_opens_platform_routes(api, subscription):
    response = api.post("/api/v1/bots", bot_body(bot_id="bot-admin"), secret=ADMIN_SECRET)
    assert response.status_code == 201
    assert api.get("/api/v1/ious", secret=ADMIN_SECRET).status_code == 200
    assert api.get("/api/v1/subscriptions/sub-1/guard", secret=ADMIN_SECRET).status_code == 200


def test_platform_secret_on_admin_routes_is_403_and_writes_nothing(api, subscription):
    iou = make_iou(api, "close-1")
    before = db_state()
    retry = api.post(f"/api/v1/ious/{iou.pk}/retry", secret=PLATFORM_SECRET)
    void = api.post(f"/api/v1/ious/{iou.pk}/void", {"reason": "waived"}, secret=PLATFORM_SECRET)
    assert (retry.status_code, void.status_code) == (403, 403)
    assert void.json() == {"detail": "this route needs the admin secret"}
    assert db_state() == before


@pytest.mark.parametrize("case", ["no headers", "wrong secret", "stale", "future"])
def test_badly_signed_admin_routes_are_401_and_write_nothing(api, subscription, case):
    iou = make_iou(api, "close-1")
    body = json.dumps({"reason": "waived"}).encode()
    before = db_state()
    void = api.post(f"/api/v1/ious/{iou.pk}/void", raw=body, headers=refused_cases(body)[case])
    retry = api.post(f"/api/v1/ious/{iou.pk}/retry", raw=b"", headers=refused_cases(b"")[case])
    assert (void.status_code, retry.status_code) == (401, 401)
    assert db_state() == before


def test_signed_posts_need_no_csrf_token():
    """The platform is not a browser: Django's CSRF check does not apply to the API."""
    from django.test import Client

    from tests.api.conftest import SignedClient

    response = SignedClient(Client(enforce_csrf_checks=True)).post("/api/v1/bots", bot_body())
    assert response.status_code == 201
