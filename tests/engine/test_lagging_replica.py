"""Payouts whose statuses only a lagging replica answers (docs/design.md, "Expired only from a
caught-up node"): two URLs in front of one node with a running clock; the primary answers
``getSignatureStatuses`` with HTTP 503/429 (a provider rate-limiting heavy methods), so the pool
reads statuses from the replica, 180 slots behind. Every transfer lands; the ledger must say so,
sign nothing twice and owe nothing."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from profitshare.models import IOU, AttemptStatus, Distribution, DistributionStatus, PayoutAttempt
from profitshare.services.engine import process_pending
from tests.chain.gateway_support import make_gateway
from tests.conftest import LocalnetHandle
from tests.factories import PublishedBotFactory
from tests.world import make_world, token_balance

pytestmark = pytest.mark.django_db(transaction=True)

SLOT_MS = 15  # a blockhash lives 150 slots = 2.25 s; the replica is 180 slots = 2.7 s behind
LAG = 180


@pytest.fixture(scope="module")
def clocked():
    """A node whose clock runs (a slot every 15 ms), served on two URLs: ``primary`` and the
    server named ``replica``."""
    from profitshare.localnet.node import LocalNode
    from profitshare.localnet.server import RpcHttpServer

    node = LocalNode(slot_ms=SLOT_MS, self_check=True)
    primary = RpcHttpServer(node, "127.0.0.1", 0)
    replica = RpcHttpServer(node, "127.0.0.1", 0, name="replica", clock=False)
    primary.start()
    replica.start()
    handles = LocalnetHandle(primary), LocalnetHandle(replica)
    yield handles
    for handle in handles:
        handle.close()
    replica.stop()
    primary.stop()


def test_five_closes_confirmed_only_by_a_lagging_replica_are_paid_once(clocked):
    primary, replica = clocked
    bot = PublishedBotFactory(profit_share_bps=1_000)
    worlds = [make_world(primary, bot=bot) for _ in range(5)]
    primary.rpc("localnet_setFaults", {"seed": 9, "endpoints": {
        "primary": {"httpErrorRate": 1.0, "httpErrorMethods": ["getSignatureStatuses"]},
        "replica": {"lagSlots": LAG},
    }})
    try:
        ids = [world.close(30_000_000).distribution.pk for world in worlds]  # 3 USDC each
        gateway = make_gateway(primary, urls=[primary.url, replica.url], slot_probe_seconds=0.5, confirm_timeout=15)
        assert sorted(process_pending(gateway=gateway)) == sorted(ids)
        assert gateway.pool.slot_lags()[replica.url] >= LAG - 5
    finally:
        primary.rpc("localnet_setFaults", {})
    creator = worlds[0].creator
    assert token_balance(primary, creator) == 15_000_000  # the chain paid 15 USDC
    assert Distribution.objects.aggregate(paid=Sum("paid"), owed=Sum("owed")) == {"paid": 15_000_000, "owed": 0}
    assert set(Distribution.objects.values_list("status", flat=True)) == {DistributionStatus.PAID}
    assert list(PayoutAttempt.objects.values_list("status", flat=True)) == [AttemptStatus.LANDED] * 5  # signed once each
    assert not IOU.objects.exists()
