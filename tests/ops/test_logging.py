"""Structured logs: one JSON line per recorded state change, never key material."""

from __future__ import annotations

import json
import logging

import pytest

from profitshare.log_format import JsonFormatter
from profitshare.services.engine import process_distribution
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)


def json_lines(caplog) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "profitshare.state"]


def test_an_iou_created_by_the_engine_is_one_json_line(localnet, gateway, caplog):
    caplog.set_level(logging.INFO, logger="profitshare.state")
    world = make_world(localnet, lamports=1_000_000)
    distribution = world.close(40_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    [line] = [x for x in json_lines(caplog) if x["entity"] == "iou"]
    assert (line["to"], line["reason"], line["actor"]) == ("open", "insufficient_sol", "engine")
    assert line["data"]["amount"] == 4_000_000 and line["level"] == "INFO" and line["ts"]
    encrypted = bytes(world.subscription.agent_wallet.encrypted_secret).hex()
    assert all(encrypted not in json.dumps(x) for x in json_lines(caplog))


def test_batch_phases_and_intake_log_their_state_changes_too(localnet, gateway, caplog):
    """Events written in bulk (intake, the engine's batch phases) are logged like the rest."""
    caplog.set_level(logging.INFO, logger="profitshare.state")
    world = make_world(localnet)
    distribution = world.close(20_000_000).distribution
    process_distribution(distribution.pk, gateway=gateway)
    lines = json_lines(caplog)
    assert any(x["entity"] == "close" and x["to"] == "recorded" for x in lines)
    landed = [x for x in lines if x["entity"] == "payout_attempt" and x["to"] == "landed"]
    assert len(landed) == 1 and landed[0]["data"]["amount"] == 2_000_000
    assert [x["to"] for x in lines if x["entity"] == "distribution" and x["to"]][-1] == "paid"


def test_a_rolled_back_change_is_not_logged(caplog):
    from django.db import transaction

    from profitshare.services.audit import record_event

    caplog.set_level(logging.INFO, logger="profitshare.state")
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event("iou", 1, actor="test", from_status="open", to_status="paid")
        raise RuntimeError("rolled back")
    assert json_lines(caplog) == []


def test_the_formatter_drops_key_material():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "paid %s", ("sig",), None)
    record.amount, record.secret_key, record.keypair, record.encrypted_secret = 5, "s", "k", "e"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "paid sig" and line["amount"] == 5
    assert not {"secret_key", "keypair", "encrypted_secret"} & set(line)
