"""While PostgreSQL or the broker cannot take a request: 503 with the API's JSON error and
``Retry-After`` (nothing written), and a close that was recorded answers 202 even when its task
could not be queued (the stale resolver finds it in the ledger), with a log line saying so."""

from __future__ import annotations

import logging
import socket
from contextlib import contextmanager

import pytest
from django.db import connection

from profitshare.models import Distribution, DistributionStatus, TradeClose
from tests.api.conftest import close_body
from tests.pages.conftest import sign_in_as


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database_unreachable():
    """The default connection pointed at a port nothing listens on (connection refused), then
    restored."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": closed_port()})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def database_down():
    with database_unreachable():
        yield


@pytest.mark.django_db(transaction=True)
def test_api_answers_503_with_retry_after_while_the_database_is_down(api, subscription, database_down):
    response = api.post("/api/v1/trade-closes", close_body("c-down"))
    assert response.status_code == 503
    assert response.json() == {"detail": "the database is unavailable; retry shortly"}
    assert response["Retry-After"] == "5"
    assert api.get("/api/v1/ious").status_code == 503


@pytest.mark.django_db(transaction=True)
def test_pages_answer_503_while_the_database_is_down(client):
    from solders.keypair import Keypair

    sign_in_as(client, str(Keypair().pubkey()))
    with database_unreachable():
        response = client.get("/subscriber/")
    assert response.status_code == 503 and response["Retry-After"] == "5"


@pytest.mark.django_db
def test_a_recorded_close_answers_202_when_the_broker_is_down(
    api, subscription, monkeypatch, caplog, django_capture_on_commit_callbacks, request
):
    from django_q.conf import Conf

    from profitshare import tasks

    # a Redis broker nothing listens for; the process's cached broker is built anew from it
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{closed_port()}/0")
    tasks._broker.cache_clear()
    request.addfinalizer(tasks._broker.cache_clear)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/trade-closes", close_body("c-nobroker"))
    assert response.status_code == 202, response.content
    assert response.json() == {"close_id": "c-nobroker", "status": "pending"}
    dist = Distribution.objects.get(close=TradeClose.objects.get(close_id="c-nobroker"))
    assert dist.status == DistributionStatus.PENDING  # what the stale resolver picks up
    assert any(
        f"distribution {dist.pk} recorded but its payout task could not be queued" in r.getMessage()
        for r in caplog.records
    )
    # the platform's retry of the same close is the same answer, not a new close
    again = api.post("/api/v1/trade-closes", close_body("c-nobroker"))
    assert again.status_code == 200 and TradeClose.objects.filter(close_id="c-nobroker").count() == 1
