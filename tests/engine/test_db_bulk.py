"""db.bulk.insert_rows: the engine's plain-SQL bulk inserts behave as the ORM's would."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from profitshare.db.bulk import insert_rows
from profitshare.models import AuditEvent, Distribution, TradeClose
from profitshare.services.audit import append_events, event
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_rows_get_their_defaults_and_the_returned_keys_map_to_primary_keys():
    sub = SubscriptionFactory()
    rows = [(f"bulk-{n}", sub.pk, 0, 5_000_000 * (n + 1), "full", "2026-11-01T00:00:00+00:00", "0" * 64) for n in range(3)]
    keys = insert_rows(
        TradeClose, ("close_id", "subscription_id", "market_index", "realized_pnl", "kind", "closed_at", "body_sha256"),
        rows, returning="close_id",
    )
    closes = {c.close_id: c for c in TradeClose.objects.filter(close_id__startswith="bulk-")}
    assert dict(keys) == {close_id: c.pk for close_id, c in closes.items()}
    assert closes["bulk-2"].realized_pnl == 15_000_000
    assert all(c.received_at is not None for c in closes.values())  # auto_now_add filled in
    dist_keys = insert_rows(
        Distribution, ("close_id", "subscription_id", "creator_id", "bot_id", "realized_pnl", "profit_share_bps",
                       "policy", "share", "owed"),
        [(closes["bulk-0"].pk, sub.pk, sub.bot.creator_id, sub.bot_id, 5_000_000, 1_000, "per_trade", 500_000, 500_000)],
        returning="close_id",
    )
    dist = Distribution.objects.get(pk=dist_keys[0][1])
    assert (dist.status, dist.paid, dist.carried, dist.voided, dist.attempts) == ("pending", 0, 0, 0, 0)


def test_a_refused_row_inserts_nothing():
    sub = SubscriptionFactory()
    columns = ("close_id", "subscription_id", "market_index", "realized_pnl", "kind", "closed_at", "body_sha256")
    good = ("ok-1", sub.pk, 0, 1, "full", "2026-11-01T00:00:00+00:00", "0" * 64)
    bad = ("ok-2", sub.pk, 0, 1, "sideways", "2026-11-01T00:00:00+00:00", "0" * 64)  # kind check constraint
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(TradeClose, columns, [good, bad])
    assert not TradeClose.objects.filter(close_id__startswith="ok-").exists()
    with pytest.raises(KeyError):
        insert_rows(TradeClose, ("no_such_column",), [(1,)])


def test_audit_events_in_bulk_keep_their_data_and_one_timestamp():
    append_events([
        event("distribution", 7, actor="engine", from_status="pending", to_status="processing", amount=1_000_000),
        event("payout_attempt", "sig", actor="engine", to_status="prepared", nested={"a": [1, 2]}),
    ])
    first, second = AuditEvent.objects.order_by("id")
    assert (first.entity, first.entity_id, first.data) == ("distribution", "7", {"amount": 1_000_000})
    assert second.data == {"nested": {"a": [1, 2]}}
    assert first.created_at == second.created_at
    with pytest.raises(TypeError), transaction.atomic():
        append_events([event("distribution", 8, actor="engine", bad=object())])
    assert AuditEvent.objects.count() == 2
