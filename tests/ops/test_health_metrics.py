"""``/healthz`` (database, broker, RPC: 200 or 503 naming what failed) and Prometheus
``/metrics`` (ledger figures from PostgreSQL, RPC errors, multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from profitshare.chain.errors import RpcUnavailable
from profitshare.services.engine import process_distribution
from tests.chain.gateway_support import make_gateway
from tests.world import make_world

pytestmark = pytest.mark.django_db(transaction=True)
DEAD_URL = "http://127.0.0.1:9"
ROOT = Path(__file__).resolve().parents[2]


def samples(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_healthz_ok_when_database_broker_and_rpc_answer(client, localnet, settings):
    settings.QV_RPC_URLS = [DEAD_URL, localnet.url]  # one endpoint up is enough (failover)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["failed"]) == ("ok", [])
    assert body["checks"]["rpc"]["endpoints"][localnet.url] == "ok"
    assert body["checks"]["broker"]["queued"] == 0


def test_healthz_503_names_the_rpc(client, settings):
    settings.QV_RPC_URLS = [DEAD_URL]
    settings.QV_HEALTHZ_TIMEOUT_SECONDS = 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["rpc"]


def test_healthz_503_names_the_broker(client, localnet, settings, monkeypatch):
    from django_q.conf import Conf

    settings.QV_RPC_URLS = [localnet.url]
    monkeypatch.setattr(Conf, "ORM", None)  # configure the Redis broker on a closed port
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:9/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]


def test_healthz_503_names_the_database(client, localnet, settings):
    settings.QV_RPC_URLS = [localnet.url]
    real_name = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = "qv_no_such_database"
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict["NAME"] = real_name
    assert response.status_code == 503
    assert "database" in response.json()["failed"]


def test_metrics_report_the_ledger(client, localnet, gateway):
    paid = make_world(localnet)
    process_distribution(paid.close(50_000_000).distribution.pk, gateway=gateway)  # 5 USDC paid
    owing = make_world(localnet, lamports=1_000_000)
    process_distribution(owing.close(40_000_000).distribution.pk, gateway=gateway)  # 4 USDC owed
    values = samples(client)
    assert values[("qv_distributions_paid_total", ())] == 1
    assert values[("qv_usdc_paid_base_units_total", ())] == 5_000_000
    assert values[("qv_ious_open", ())] == 1
    assert values[("qv_usdc_owed_base_units", ())] == 4_000_000
    assert values[("qv_payout_seconds_count", ())] == 1
    assert values[("qv_payout_seconds_bucket", (("le", "+Inf"),))] == 1
    assert values[("qv_metrics_database_up", ())] == 1


def test_metrics_count_rpc_errors(client, localnet):
    dead = make_gateway(type("Dead", (), {"url": DEAD_URL})(), max_attempts=2)
    before = samples(client).get(("qv_rpc_errors_total", (("kind", "connect"), ("url", DEAD_URL))), 0)
    with pytest.raises(RpcUnavailable):
        dead.latest_blockhash()
    after = samples(client)[("qv_rpc_errors_total", (("kind", "connect"), ("url", DEAD_URL)))]
    assert after - before == 2


def test_healthz_and_metrics_say_how_far_behind_each_endpoint_is(client, localnet, replica, settings):
    import math

    settings.QV_METRICS_TOKEN = ""
    settings.QV_HEALTHZ_TIMEOUT_SECONDS = 1
    settings.QV_RPC_URLS = [localnet.url, replica.url, DEAD_URL]
    localnet.rpc("localnet_advanceSlots", 60)
    localnet.rpc("localnet_setFaults", {"endpoints": {"replica": {"lagSlots": 50}}})
    now = localnet.rpc("getSlot")
    rpc = client.get("/healthz").json()["checks"]["rpc"]
    assert rpc["slots"] == {localnet.url: {"slot": now, "behind": 0}, replica.url: {"slot": now - 50, "behind": 50},
                            DEAD_URL: {"slot": None, "behind": None}}
    values = samples(client)
    assert values[("qv_rpc_slot", (("url", localnet.url),))] == now
    assert values[("qv_rpc_slots_behind", (("url", localnet.url),))] == 0
    assert values[("qv_rpc_slots_behind", (("url", replica.url),))] == 50
    assert math.isnan(values[("qv_rpc_slots_behind", (("url", DEAD_URL),))])
    assert ("qv_rpc_slot", (("url", DEAD_URL),)) not in values


def test_metrics_survive_a_database_outage(client):
    real_name = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = "qv_no_such_database"
    try:
        values = samples(client)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = real_name
    assert values[("qv_metrics_database_up", ())] == 0
    assert ("qv_usdc_paid_base_units_total", ()) not in values


WRITER = """
import django, sys
django.setup()
from profitshare.services import metrics
metrics.RPC_ERRORS.labels("http://rpc.example", "http_429").inc(int(sys.argv[1]))
"""
READER = """
import django, sys
django.setup()
from profitshare.services import metrics
sys.stdout.write(metrics.render(ledger=False).decode())
"""


def test_multiprocess_mode_sums_every_process(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "quantumvault.settings"}
    for count in ("3", "4"):  # two worker processes
        subprocess.run([sys.executable, "-c", WRITER, count], env=env, cwd=ROOT, check=True)
    out = subprocess.run([sys.executable, "-c", READER], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    families = {f.name: f for f in text_string_to_metric_families(out.stdout)}
    [sample] = [s for s in families["qv_rpc_errors"].samples if s.name == "qv_rpc_errors_total"]
    assert sample.labels == {"url": "http://rpc.example", "kind": "http_429"} and sample.value == 7


def test_failed_django_q_tasks_are_visible(client, localnet, settings):
    import uuid

    from django.utils import timezone
    from django_q.models import Task

    settings.QV_RPC_URLS = [localnet.url]
    now = timezone.now()
    Task.objects.create(id=uuid.uuid4().hex, name="failed-one", func="profitshare.tasks.reconcile_task",
                        started=now, stopped=now, success=False, result="RpcUnavailable")
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["checks"]["broker"]["failed_tasks"] == 1  # visible, not fatal
    assert samples(client)[("qv_q_failed_tasks", ())] == 1


# --- who may read /metrics (QV_METRICS_TOKEN) ----------------------------------------------------
def staff_client(client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("ops", password="x", is_staff=True))
    return client


def test_without_a_token_metrics_are_served_to_loopback(client, settings):
    settings.QV_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_without_a_token_a_remote_scrape_is_403_unless_staff(client, settings):
    settings.QV_METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="10.0.0.7")
    assert response.status_code == 403 and b"QV_METRICS_TOKEN" in response.content
    assert b"qv_" not in response.content
    assert staff_client(client).get("/metrics", REMOTE_ADDR="10.0.0.7").status_code == 200


def test_with_a_token_the_bearer_token_is_required(client, settings):
    settings.QV_METRICS_TOKEN = "s3cret-token"
    missing = client.get("/metrics", REMOTE_ADDR="10.0.0.7")
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"qv_" not in missing.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", REMOTE_ADDR="10.0.0.7").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-token", REMOTE_ADDR="10.0.0.7").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401  # loopback is not exempt then
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", REMOTE_ADDR="10.0.0.7")
    assert ok.status_code == 200 and b"qv_metrics_database_up" in ok.content


def test_with_a_token_staff_may_still_read_metrics(client, settings):
    settings.QV_METRICS_TOKEN = "s3cret-token"
    assert staff_client(client).get("/metrics", REMOTE_ADDR="10.0.0.7").status_code == 200


def test_rpc_urls_with_api_keys_are_not_shown(client, localnet, settings):
    settings.QV_METRICS_TOKEN = ""
    settings.QV_RPC_URLS = [f"{localnet.url}/?api-key=very-secret", "http://user:pw@127.0.0.1:9/?api-key=other-secret"]
    settings.QV_HEALTHZ_TIMEOUT_SECONDS = 1
    body = client.get("/healthz")
    assert body.status_code == 200 and b"secret" not in body.content and b"pw@" not in body.content
    assert body.json()["checks"]["rpc"]["endpoints"] == {f"{localnet.url}/?…": "ok", "http://127.0.0.1:9/?…": "ConnectError"}
    dead = make_gateway(type("Dead", (), {"url": "http://127.0.0.1:9/?api-key=other-secret"})(), max_attempts=1)
    with pytest.raises(RpcUnavailable):
        dead.latest_blockhash()
    scraped = client.get("/metrics")
    assert b"secret" not in scraped.content and 'url="http://127.0.0.1:9/?…"'.encode() in scraped.content
