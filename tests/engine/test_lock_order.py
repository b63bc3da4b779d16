"""Transactions of one creator queue on the running totals and never deadlock (docs/design.md,
"Running totals are written last"), on PostgreSQL with real row locks.

The cycle this guards against: a payout landing for a subscription takes the creator's
running-total row and then the subscription's row (to clear its delinquency), while an intake
for the same subscription holds the subscription's row and waits for the running total.
The test makes the interleaving certain instead of likely: a third connection holds the
creator's leg-totals row, the payout and then the intake are started and seen waiting, and the
row is let go."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection

from profitshare.models import IOU, Distribution, IouStatus, LegRole, LegTotals
from profitshare.services import ious, leg_totals
from profitshare.services.engine import retry_iou
from tests.world import owe_for_lack_of_sol

pytestmark = pytest.mark.django_db(transaction=True)


def _conninfo() -> str:
    s = connection.settings_dict
    return f"host={s['HOST']} port={s['PORT'] or 5432} dbname={s['NAME']} user={s['USER']}"


def _wait_for_lock_waiters(db: psycopg.Connection, count: int, timeout: float = 30.0) -> None:
    """Until ``count`` other sessions of this database wait for a lock (``db`` in autocommit:
    inside a transaction PostgreSQL answers from one snapshot of the statistics)."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchone()[0]
        if waiting >= count:
            return
        assert time.monotonic() < deadline, f"{waiting} sessions wait for a lock, expected {count}"
        time.sleep(0.05)


def _run(target, errors: list) -> threading.Thread:
    def body():
        try:
            target()
        except Exception as exc:  # noqa: BLE001 - the test asserts there are none
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_a_landing_payout_and_an_intake_of_one_subscription_queue_instead_of_deadlocking(localnet, gateway):
    world, distribution, iou = owe_for_lack_of_sol(localnet, gateway)
    localnet.rpc("requestAirdrop", str(world.agent.pubkey()), 100_000_000)  # the retry can pay now
    from django.utils import timezone

    assert ious.claim_due_ious(now=timezone.now() + timezone.timedelta(hours=1)) == [iou.pk]
    creator_id = distribution.creator_id
    assert LegTotals.objects.filter(creator_id=creator_id, role=LegRole.CREATOR).exists()
    closes: list = []
    errors: list = []

    with psycopg.connect(_conninfo(), autocommit=False) as holder, psycopg.connect(_conninfo(), autocommit=True) as watch:
        holder.execute(
            "SELECT 1 FROM profitshare_legtotals WHERE creator_id = %s AND role = %s FOR UPDATE",
            [creator_id, LegRole.CREATOR],
        )
        payout = _run(lambda: retry_iou(iou.pk, gateway=gateway), errors)
        _wait_for_lock_waiters(watch, 1)  # the payout's transaction waits, holding what it took
        intake = _run(lambda: closes.append(world.close(20_000_000, realize=False)), errors)
        _wait_for_lock_waiters(watch, 2)  # and the intake waits too
        holder.rollback()  # let the row go
    payout.join(timeout=60)
    intake.join(timeout=60)

    assert errors == []
    iou.refresh_from_db()
    assert iou.status == IouStatus.PAID and world.creator_usdc() == 4_000_000
    new = Distribution.objects.get(pk=closes[0].distribution.pk)
    assert (new.share, new.owed) == (2_000_000, 2_000_000)
    assert IOU.objects.filter(status__in=IouStatus.ACTIVE).count() == 0
    assert leg_totals.rollup_sums() == leg_totals.ledger_sums()
