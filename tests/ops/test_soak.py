"""The fault soak, small (``benchmarks/soak.py``, the reliability bar): closes across
subscriptions and creators while the node drops sends, loses responses, answers 429/503 and
delivers partial withdraws, a wave whose statuses only a replica 200 slots behind answers (the
primary refuses them), a worker process SIGKILLed mid-payout and restarted; then, read from the
chain and PostgreSQL: no double payment, every close balanced to the base unit, every creator's
chain balance equal to the ledger, every paid signature reconciled, no payout wrongly decided
unlanded, nothing left processing."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from benchmarks.soak import SLOT_PROBE_SECONDS, run_soak
from profitshare.models import IOU, IouStatus
from tests.chain.gateway_support import make_gateway

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_soak_pays_everything_exactly_once(localnet, replica, settings, tmp_path):
    db = connection.settings_dict
    worker_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "QV_KEY_ENCRYPTION_KEYS": ",".join(settings.QV_KEY_ENCRYPTION_KEYS),
        "SOLANA_RPC_URLS": f"{localnet.url},{replica.url}", "QV_RPC_SLOT_PROBE_SECONDS": str(SLOT_PROBE_SECONDS),
        "QV_LOG_LEVEL": "ERROR", "DJANGO_SETTINGS_MODULE": "quantumvault.settings",
    }
    if db.get("PASSWORD"):
        worker_env["DATABASE_URL"] = worker_env["DATABASE_URL"].replace("@", f":{db['PASSWORD']}@", 1)
    worker_env.pop("REDIS_URL", None)
    settings.QV_RPC_URLS = [localnet.url, replica.url]
    gateway = make_gateway(localnet, urls=settings.QV_RPC_URLS, slot_probe_seconds=SLOT_PROBE_SECONDS)
    result = run_soak(localnet.url, closes=120, subscriptions=12, creators=3, seed=11, worker_env=worker_env,
                      gateway=gateway, waves=3, storm_every=2, replica_url=replica.url, work_dir=tmp_path)
    print("\n".join(result.lines()))
    assert result.killed_worker and result.worker_restarted
    assert (result.storm_waves, result.lag_waves) == (2, 1)
    assert result.landed_per_chain == 0  # no payout was decided unlanded that had landed
    assert result.double_payments == 0 and result.chain_landed_unrecorded == 0
    assert result.unbalanced == 0 and result.dust_off == 0
    assert result.creators_off == 0
    assert result.payouts > 0 and result.reconciliation_matched == result.reconciliation_checked == result.payouts
    assert (result.reconciliation_mismatches, result.reconciliation_unrecorded, result.reconciliation_error) == (0, 0, "")
    assert (result.stuck_ious, result.stuck_distributions, result.stuck_attempts, result.still_owed) == (0, 0, 0, 0)
    assert not IOU.objects.filter(status=IouStatus.PROCESSING).exists()
    assert result.ok
