"""HMAC signing (signature v2): missing, wrong, stale, future and cross-secret requests are
refused (401 / 403) and write nothing; a signature made for one method, path or query is refused
on any other; the admin secret also opens platform routes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from tests.api.conftest import (
    ADMIN_SECRET,
    PLATFORM_SECRET,
    auth_headers,
    bot_body,
    db_state,
    hmac_hex,
    make_iou,
)

pytestmark = pytest.mark.django_db


def refused_cases(method: str, path: str, body: bytes) -> dict:
    """Headers that must be refused for ``method`` ``path`` with ``body``, by name."""
    now = int(time.time())
    other_method = "GET" if method == "POST" else "POST"
    return {
        "no headers": {},
        "no signature": {"X-QV-Timestamp": str(now)},
        "no timestamp": {"X-QV-Signature": hmac_hex(PLATFORM_SECRET, now, method, path, body)},
        "wrong secret": auth_headers("not-the-secret", now, method, path, body),
        "garbage signature": {"X-QV-Timestamp": str(now), "X-QV-Signature": "zz" * 32},
        "signature of another body": auth_headers(PLATFORM_SECRET, now, method, path, body + b" "),
        "signature for another timestamp": {
            "X-QV-Timestamp": str(now),
            "X-QV-Signature": hmac_hex(PLATFORM_SECRET, now - 1, method, path, body),
        },
        "signature for another method": auth_headers(PLATFORM_SECRET, now, other_method, path, body),
        "signature for another path": auth_headers(PLATFORM_SECRET, now, method, path + "x", body),
        "signature for another query": auth_headers(PLATFORM_SECRET, now, method, path + "?limit=1", body),
        "signature v1 (timestamp and body only)": {
            "X-QV-Timestamp": str(now),
            "X-QV-Signature": hmac.new(PLATFORM_SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest(),
        },
        # past the 300 s window by more than a slow test run takes (these headers are made once
        # per test and the clock moves on while its requests run)
        "stale": auth_headers(PLATFORM_SECRET, now - 360, method, path, body),
        "future": auth_headers(PLATFORM_SECRET, now + 360, method, path, body),
        "non-numeric timestamp": auth_headers(PLATFORM_SECRET, "yesterday", method, path, body),
        "non-ascii signature": {"X-QV-Timestamp": str(now), "X-QV-Signature": "é" * 64},
    }


CASES = list(refused_cases("POST", "/", b""))


@pytest.mark.parametrize("case", CASES)
def test_unsigned_or_badly_signed_post_is_401_and_writes_nothing(api, case):
    raw = json.dumps(bot_body()).encode()
    before = db_state()
    response = api.post("/api/v1/bots", raw=raw, headers=refused_cases("POST", "/api/v1/bots", raw)[case])
    assert response.status_code == 401, (case, response.content)
    assert isinstance(response.json()["detail"], str)
    assert db_state() == before


@pytest.mark.parametrize("case", CASES)
def test_unsigned_or_badly_signed_get_is_401(api, subscription, case):
    for path in ("/api/v1/ious", "/api/v1/ious?status=open", "/api/v1/subscriptions/sub-1/guard"):
        response = api.get(path, headers=refused_cases("GET", path, b"")[case])
        assert response.status_code == 401, (case, path, response.content)


def test_a_signed_void_replayed_to_another_iou_is_401_and_voids_nothing(api, subscription):
    """A captured ``POST /ious/5/void`` must not void IOU 6."""
    first, second = make_iou(api, "close-1"), make_iou(api, "close-2")
    body = json.dumps({"reason": "waived"}).encode()
    captured = auth_headers(ADMIN_SECRET, int(time.time()), "POST", f"/api/v1/ious/{first.pk}/void", body)
    before = db_state()
    replayed = api.post(f"/api/v1/ious/{second.pk}/void", raw=body, headers=captured)
    assert replayed.status_code == 401
    assert db_state() == before
    assert api.post(f"/api/v1/ious/{first.pk}/void", raw=body, headers=captured).status_code == 200
    second.refresh_from_db()
    assert second.status == "open"


def test_a_signed_get_holds_for_its_own_query_only(api, subscription):
    make_iou(api, "close-1")
    headers = auth_headers(PLATFORM_SECRET, int(time.time()), "GET", "/api/v1/ious?status=open", b"")
    assert api.get("/api/v1/ious?status=open", headers=headers).status_code == 200
    assert api.get("/api/v1/ious?status=paid", headers=headers).status_code == 401
    assert api.get("/api/v1/ious", headers=headers).status_code == 401
    assert api.get("/api/v1/trade-closes/close-1", headers=headers).status_code == 401


def test_the_app_signing_function_is_signature_v2():
    """The clients' signing function (the demo market's) computes what the platform does."""
    from profitshare.api.auth import sign

    assert sign("s", 17, "post", "/api/v1/ious/5/void", b"{}") == hmac_hex("s", 17, "POST", "/api/v1/ious/5/void", b"{}")


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


@pytest.mark.parametrize("case", ["no headers", "wrong secret", "stale", "future", "signature for another path"])
def test_badly_signed_admin_routes_are_401_and_write_nothing(api, subscription, case):
    iou = make_iou(api, "close-1")
    body = json.dumps({"reason": "waived"}).encode()
    before = db_state()
    void_path, retry_path = f"/api/v1/ious/{iou.pk}/void", f"/api/v1/ious/{iou.pk}/retry"
    void = api.post(void_path, raw=body, headers=refused_cases("POST", void_path, body)[case])
    retry = api.post(retry_path, raw=b"", headers=refused_cases("POST", retry_path, b"")[case])
    assert (void.status_code, retry.status_code) == (401, 401)
    assert db_state() == before


def test_signed_posts_need_no_csrf_token():
    """The platform is not a browser: Django's CSRF check does not apply to the API."""
    from django.test import Client

    from tests.api.conftest import SignedClient

    response = SignedClient(Client(enforce_csrf_checks=True)).post("/api/v1/bots", bot_body())
    assert response.status_code == 201
