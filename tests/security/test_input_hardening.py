"""Hostile input on PostgreSQL: NUL bytes, out-of-range PnL, blank or padded ids, far-future
times, oversized bodies and CSV formulas are clear 4xx answers (never 500) that write nothing."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from solders.keypair import Keypair

from profitshare.models import CreatorWallet, Distribution, SiwsNonce
from tests.api.conftest import bot_body, close_body, db_state, make_iou, subscription_body
from tests.pages.conftest import sign_in_as

pytestmark = pytest.mark.django_db


# --- NUL bytes: 404 or 422, never 500 --------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/api/v1/ious?subscription_id=a%00b", "/api/v1/trade-closes/a%00b", "/api/v1/subscriptions/a%00b/guard"],
)
def test_nul_bytes_in_api_paths_and_queries_are_422(api, subscription, path):
    response = api.get(path)
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["field"] in {"subscription_id", "close_id"}


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/api/v1/bots", bot_body(bot_id="a\x00b")),
        ("/api/v1/bots", bot_body(name="Mo\x00mentum")),
        ("/api/v1/subscriptions", subscription_body(subscription_id="a\x00b")),
        ("/api/v1/subscriptions", subscription_body(bot_id="a\x00b")),
        ("/api/v1/trade-closes", close_body(close_id="a\x00b")),
        ("/api/v1/trade-closes", close_body(subscription_id="a\x00b")),
    ],
)
def test_nul_bytes_in_post_bodies_are_422_and_write_nothing(api, subscription, route, body):
    before = db_state()
    response = api.post(route, body)
    assert response.status_code == 422, response.content
    assert db_state() == before


def test_a_nul_byte_in_a_void_reason_is_422(api, subscription):
    iou = make_iou(api, "close-1")
    before = db_state()
    response = api.post(f"/api/v1/ious/{iou.pk}/void", {"reason": "waived\x00"}, secret="admin-test-secret")
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "reason"
    assert db_state() == before


@pytest.mark.parametrize("path", ["/subscriber/a%00b/", "/subscriber/a%00b/banner/", "/creator/bots/a%00b/"])
def test_nul_bytes_in_signed_in_page_paths_are_404(client, path):
    sign_in_as(client, str(Keypair().pubkey()))
    assert client.get(path).status_code == 404


def test_nul_bytes_without_sign_in_are_404(client):
    assert client.get("/bots/a%00b/snippet/").status_code == 404
    assert client.post("/signin/verify/", {"nonce": "a\x00b", "signature": str(Keypair().sign_message(b"x"))}).status_code == 404
    assert client.post("/signin/challenge/", {"address": "a\x00b"}).status_code == 404
    assert client.get("/signin/?next=/a%00b").status_code == 404
    assert not SiwsNonce.objects.exists()


def test_nul_bytes_in_console_filters_are_404(client):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("ops", "ops@example.com", "pw-for-tests", is_staff=True)
    assert client.login(username="ops", password="pw-for-tests")
    assert client.get("/console/?creator=a%00b").status_code == 404
    assert client.get("/console/?subscriber=x&reason=a%00b").status_code == 404


# --- bounds ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pnl", [2**63 - 1, -(2**63), 10**15 + 1, -(10**15) - 1])
def test_pnl_beyond_ten_to_the_fifteen_is_422_naming_the_field(api, subscription, pnl):
    before = db_state()
    response = api.post("/api/v1/trade-closes", close_body("c-huge", realized_pnl=pnl))
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["detail"]] == ["realized_pnl"]
    assert db_state() == before


@pytest.mark.parametrize("close_id", ["   ", " c-1", "c-1 ", "\tc", "c\n", "\u00a0c", "c\u2003"])
def test_blank_or_padded_ids_are_422(api, subscription, close_id):
    before = db_state()
    response = api.post("/api/v1/trade-closes", close_body(close_id))
    assert response.status_code == 422, response.content
    assert response.json()["detail"] == [
        {"field": "close_id", "message": "must be printable text: no control characters, not blank, no surrounding whitespace"}
    ]
    assert db_state() == before


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/api/v1/bots", bot_body(bot_id="  "), "bot_id"),
        ("/api/v1/bots", bot_body(name="   "), "name"),
        ("/api/v1/subscriptions", subscription_body(subscription_id=" s"), "subscription_id"),
    ],
)
def test_blank_ids_and_names_are_422_everywhere(api, subscription, route, body, field):
    before = db_state()
    response = api.post(route, body)
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == field
    assert db_state() == before


def test_ids_with_inner_spaces_and_unicode_are_accepted(api, subscription):
    assert api.post("/api/v1/trade-closes", close_body("close 1 · é")).status_code == 202


@pytest.mark.parametrize(
    "closed_at",
    [
        "2100-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "1969-12-31T23:59:59Z",
        (datetime.now(UTC) + timedelta(days=1, minutes=5)).isoformat(),
        "2026-01-02 03:04:05Z",
        "2026-01-02T03:04:05.1234567Z",
        "2026-01-02T03:04:60Z",
    ],
)
def test_closed_at_out_of_range_is_422(api, subscription, closed_at):
    before = db_state()
    response = api.post("/api/v1/trade-closes", close_body("c-t", closed_at=closed_at))
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["detail"]] == ["closed_at"]
    assert db_state() == before


def test_closed_at_up_to_a_day_ahead_is_accepted(api, subscription):
    soon = (datetime.now(UTC) + timedelta(hours=23)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    assert api.post("/api/v1/trade-closes", close_body("c-soon", closed_at=soon)).status_code == 202
    assert api.post("/api/v1/trade-closes", close_body("c-old", closed_at="1970-01-01T00:00:00+05:00")).status_code == 202


# --- body size -----------------------------------------------------------------------------------------
def test_a_body_over_the_limit_is_413_with_the_api_error_body(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
    raw = json.dumps({**bot_body(), "name": "x" * 2_700_000}).encode()
    before = db_state()
    response = api.post("/api/v1/bots", raw=raw)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "request body is larger than 2621440 bytes"}
    assert db_state() == before


# --- CSV formula injection ---------------------------------------------------------------------------
def test_history_csv_neutralises_formulas(client, api, subscription, settings):
    creator = CreatorWallet.objects.get()
    for close_id, pnl in (("=HYPERLINK(\"http://x\")", 40_000_000), ("+1+1", 40_000_000), ("-2+3", -5_000_000),
                          ("@SUM(A1)", 40_000_000), ("plain-id", 40_000_000)):
        assert api.post("/api/v1/trade-closes", close_body(close_id, realized_pnl=pnl)).status_code == 202
    assert Distribution.objects.count() == 4  # the losing close owes nothing
    sign_in_as(client, creator.address)
    body = b"".join(client.get("/creator/history.csv").streaming_content).decode()
    rows = {row["close_id"]: row for row in csv.DictReader(io.StringIO(body))}
    assert set(rows) == {"'=HYPERLINK(\"http://x\")", "'+1+1", "'@SUM(A1)", "plain-id"}
    assert rows["plain-id"]["realized_pnl_usdc"] == "40.000000"
