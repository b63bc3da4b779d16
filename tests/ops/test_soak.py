"""The fault soak, small (``benchmarks/soak.py``, the reliability bar): closes across
subscriptions and creators while the node drops sends, loses responses, answers 429/503 and
delivers partial withdraws, a worker process SIGKILLed mid-payout and restarted; then, read
from the chain and PostgreSQL: no double payment, every close balanced to the base unit, every
paid signature reconciled, nothing left processing."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from benchmarks.soak import run_soak
from profitshare.models import IOU, IouStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_soak_pays_everything_exactly_once(localnet, gateway, settings, tmp_path):
    db = connection.settings_dict
    worker_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "QV_KEY_ENCRYPTION_KEYS": ",".join(settings.QV_KEY_ENCRYPTION_KEYS),
        "SOLANA_RPC_URLS": localnet.url, "QV_LOG_LEVEL": "ERROR", "DJANGO_SETTINGS_MODULE": "quantumvault.settings",
    }
    if db.get("PASSWORD"):
        worker_env["DATABASE_URL"] = worker_env["DATABASE_URL"].replace("@", f":{db['PASSWORD']}@", 1)
    worker_env.pop("REDIS_URL", None)
    result = run_soak(localnet.url, closes=120, subscriptions=12, creators=3, seed=11, worker_env=worker_env,
                      gateway=gateway, waves=3, storm_every=2, work_dir=tmp_path)
    print("\n".join(result.lines()))
    assert result.killed_worker and result.worker_restarted
    assert result.storm_waves == 2
    assert result.double_payments == 0 and result.chain_landed_unrecorded == 0
    assert result.unbalanced == 0 and result.dust_off == 0
    assert result.creators_off == 0
    assert result.payouts > 0 and result.reconciliation_matched == result.reconciliation_checked == result.payouts
    assert (result.reconciliation_mismatches, result.reconciliation_unrecorded, result.reconciliation_error) == (0, 0, "")
    assert (result.stuck_ious, result.stuck_distributions, result.stuck_attempts, result.still_owed) == (0, 0, 0, 0)
    assert not IOU.objects.filter(status=IouStatus.PROCESSING).exists()
    assert result.ok
