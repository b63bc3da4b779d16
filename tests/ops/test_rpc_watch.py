"""Repeated RPC failure (docs/design.md, "Repeated RPC failure"): payouts owed for
``rpc_unavailable`` while the node answers only 503 raise one ``rpc_failure`` alert per window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from profitshare.models import IOU, Alert, IouReason
from profitshare.services.engine import process_distribution
from profitshare.services.health import alert_on_repeated_rpc_failures
from profitshare.tasks import watch_rpc_failures_task
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)


def owe_during_outage(localnet, gateway, n):
    worlds = [make_world(localnet) for _ in range(n)]
    closes = [w.close(50_000_000).distribution for w in worlds]
    localnet.rpc("localnet_setFaults", {"seed": 1, "httpErrorRate": 1.0})
    try:
        for distribution in closes:
            process_distribution(distribution.pk, gateway=gateway)
    finally:
        localnet.rpc("localnet_setFaults", {})


def test_repeated_rpc_failures_alert_once(localnet, gateway, settings):
    settings.QV_RPC_FAILURE_ALERT_THRESHOLD = 2
    owe_during_outage(localnet, gateway, 2)
    assert IOU.objects.filter(reason=IouReason.RPC_UNAVAILABLE).count() == 2
    assert watch_rpc_failures_task() is True
    alert = Alert.objects.get(kind="rpc_failure")
    assert (alert.severity, alert.amount, alert.data["count"]) == ("critical", 10_000_000, 2)
    assert alert_on_repeated_rpc_failures() is False  # once per window
    later = timezone.now() + timedelta(minutes=settings.QV_RPC_FAILURE_WINDOW_MINUTES + 1)
    assert alert_on_repeated_rpc_failures(later) is False  # the failures are old now


def test_a_single_failure_is_not_an_alert(localnet, gateway, settings):
    settings.QV_RPC_FAILURE_ALERT_THRESHOLD = 2
    owe_during_outage(localnet, gateway, 1)
    assert alert_on_repeated_rpc_failures() is False
    assert not Alert.objects.filter(kind="rpc_failure").exists()
