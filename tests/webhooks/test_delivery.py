"""Delivering webhooks to a real receiving server: signed and fresh (checked with the
README's receiver sample), retried with backoff after a 500 or a timeout with the same event
id, an endpoint down for a while caught up in order, in order per subscription across
concurrent workers, given up with an alert after the window."""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from profitshare.models import Alert, WebhookDelivery, WebhookEvent
from profitshare.services import webhook_delivery, webhooks
from profitshare.services.webhooks import PendingWebhook
from tests.webhooks.conftest import SECRET

pytestmark = pytest.mark.django_db(transaction=True)
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_receiver() -> dict:
    """The README's receiver sample (the first python block after "A receiver in Python"),
    run as written: its ``verify`` and ``handle``."""
    text = README.read_text()
    code = re.search(r"### A receiver in Python.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


def emit(*events: tuple[str, str, dict]) -> None:
    """Write events as a state change would (one transaction)."""
    from django.db import transaction

    with transaction.atomic():
        webhooks.emit_many(PendingWebhook(type_, key, data) for type_, key, data in events)


def paid(key: str, n: int) -> tuple[str, str, dict]:
    return ("distribution.paid", key, {"subscription_id": key, "n": n, "amount": 1_000_000 + n})


def test_signature_and_timestamp_verify_with_the_readme_sample(receiver):
    sample = readme_receiver()
    emit(paid("sub-a", 1))
    webhook_delivery.deliver_due(drain_seconds=5)
    [request] = receiver.requests
    event = WebhookEvent.objects.get()
    assert request.path == "/hooks/qv" and request.headers["content-type"] == "application/json"
    assert request.event_id == str(event.uuid) == request.json["id"]
    assert set(request.json) == {"id", "type", "created_at", "data"}
    assert request.json["data"] == {"subscription_id": "sub-a", "n": 1, "amount": 1_000_001}
    timestamp = int(request.headers["x-qv-timestamp"])
    assert abs(timezone.now().timestamp() - timestamp) < 10
    assert sample["verify"](request.message, request.body, SECRET.encode())["id"] == str(event.uuid)
    with pytest.raises(ValueError, match="bad signature"):
        sample["verify"](request.message, request.body.replace(b"1000001", b"9000001"), SECRET.encode())
    with pytest.raises(ValueError, match="bad signature"):
        sample["verify"](request.message, request.body, b"another secret of thirty-two bytes!")
    with pytest.raises(ValueError, match="stale"):
        sample["verify"](request.message, request.body, SECRET.encode(), now=timestamp + 301)


def test_the_readme_sample_acts_once_per_event_id(receiver):
    sample = readme_receiver()
    emit(paid("sub-a", 1))
    receiver.answers = [500]
    webhook_delivery.deliver_due(drain_seconds=5)
    webhook_delivery.deliver_due(now=timezone.now() + timedelta(hours=1), drain_seconds=5)
    assert len(receiver.requests) == 2
    db, acted = sqlite3.connect(":memory:"), []
    answers = [sample["handle"](r.message, r.body, db, lambda e, _db: acted.append(e["id"]), SECRET.encode())
               for r in receiver.requests]
    assert answers == [200, 200] and acted == [receiver.requests[0].event_id]
    assert sample["handle"](receiver.requests[0].message, b"{}", db, acted.append, SECRET.encode()) == 401


def test_a_500_then_200_is_delivered_once_more_with_the_same_event_id(receiver):
    emit(paid("sub-a", 1))
    receiver.answers = [500]
    t0 = timezone.now()
    counts = webhook_delivery.deliver_due(now=t0, drain_seconds=5)
    assert (counts.delivered, counts.retried) == (0, 1)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error.startswith("HTTP 500")
    assert timedelta(seconds=15) <= delivery.next_attempt_at - t0 <= timedelta(seconds=30)  # 30 s, jittered
    assert webhook_delivery.deliver_due(now=t0, drain_seconds=5).rounds == 0  # not due yet
    counts = webhook_delivery.deliver_due(now=delivery.next_attempt_at, drain_seconds=5)
    assert counts.delivered == 1
    first, second = receiver.requests
    assert first.event_id == second.event_id and first.body == second.body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "delivered", 2, 200, "")
    assert webhook_delivery.deliver_due(now=t0 + timedelta(days=1), drain_seconds=5).rounds == 0  # once


def test_a_timeout_is_retried(receiver, settings):
    settings.QV_WEBHOOK_TIMEOUT_SECONDS = 1
    emit(paid("sub-a", 1))
    receiver.delay = 1.5
    assert webhook_delivery.deliver_due(drain_seconds=5).retried == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code is None and "Timeout" in delivery.last_error
    receiver.delay = 0
    assert webhook_delivery.deliver_due(now=timezone.now() + timedelta(minutes=5), drain_seconds=5).delivered == 1


def test_an_endpoint_down_for_a_while_is_caught_up_in_order(receiver):
    emit(paid("sub-a", 1), paid("sub-b", 1))
    emit(paid("sub-a", 2))
    emit(paid("sub-b", 2), paid("sub-a", 3))
    receiver.stop()  # connection refused
    t0 = timezone.now()
    for hours in range(3):  # down for a few hours: only each queue's head is tried
        counts = webhook_delivery.deliver_due(now=t0 + timedelta(hours=hours), drain_seconds=5)
        assert (counts.delivered, counts.retried) == (0, 2)
    heads = WebhookDelivery.objects.filter(attempts__gt=0)
    assert sorted(d.event.data["n"] for d in heads) == [1, 1] and {d.attempts for d in heads} == {3}
    assert all("ConnectError" in d.last_error for d in heads)
    receiver.start()  # back, on the same port
    counts = webhook_delivery.deliver_due(now=t0 + timedelta(hours=4), drain_seconds=5)
    assert counts.delivered == 5
    got = [(r.json["data"]["subscription_id"], r.json["data"]["n"]) for r in receiver.requests]
    assert [n for key, n in got if key == "sub-a"] == [1, 2, 3]
    assert [n for key, n in got if key == "sub-b"] == [1, 2]
    assert len({r.event_id for r in receiver.requests}) == 5  # each once


def test_a_failing_queue_does_not_hold_up_another(receiver):
    emit(paid("sub-a", 1), paid("sub-a", 2), paid("sub-b", 1), paid("sub-b", 2))
    receiver.refuse = lambda request: request.json["data"] == {"subscription_id": "sub-a", "n": 1, "amount": 1_000_001}
    counts = webhook_delivery.deliver_due(drain_seconds=5)
    assert (counts.delivered, counts.retried) == (2, 1)
    got = [(r.json["data"]["subscription_id"], r.json["data"]["n"]) for r in receiver.requests]
    assert ("sub-a", 2) not in got and ("sub-b", 1) in got and ("sub-b", 2) in got


def test_gives_up_after_the_window_with_an_alert_and_the_queue_moves_on(receiver, settings):
    settings.QV_WEBHOOK_GIVE_UP_HOURS = 72
    settings.QV_WEBHOOK_RETRY_MAX_SECONDS = 6 * 3600
    emit(paid("sub-a", 1))
    emit(paid("sub-a", 2))
    receiver.refuse = lambda request: request.json["data"]["n"] == 1
    t0 = timezone.now()
    moment = t0
    while not WebhookDelivery.objects.filter(status="failed").exists() and moment < t0 + timedelta(days=4):
        webhook_delivery.deliver_due(now=moment, drain_seconds=5)
        moment += timedelta(hours=1)
    first, second = WebhookDelivery.objects.order_by("id")
    assert first.status == "failed" and first.last_status_code == 503 and first.attempts > 10
    assert timedelta(hours=66) <= moment - t0 <= timedelta(hours=74)  # retried for about 3 days
    alert = Alert.objects.get(kind="webhook_failed")
    assert alert.severity == "critical" and str(first.event.uuid) in alert.subject
    assert second.status == "delivered" and second.attempts == 1  # the queue moved on
    assert [r.json["data"]["n"] for r in receiver.requests].count(2) == 1


def test_backoff_doubles_up_to_the_cap_with_jitter(settings):
    import random

    settings.QV_WEBHOOK_RETRY_BASE_SECONDS, settings.QV_WEBHOOK_RETRY_MAX_SECONDS = 30, 3600
    rng = random.Random(7)
    for attempts, full in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (20, 3600)]:
        delays = {webhook_delivery.retry_delay(attempts, rng=rng).total_seconds() for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays) and len(delays) > 40


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED")
def test_concurrent_workers_deliver_each_once_and_in_order_per_subscription(receiver, settings):
    settings.QV_WEBHOOK_BATCH_SIZE = 3
    for n in range(1, 11):
        emit(*(paid(f"sub-{k}", n) for k in range(6)))
    import random

    receiver.delay = lambda: random.uniform(0, 0.1)  # requests overtake each other

    def worker():
        try:
            webhook_delivery.deliver_due(drain_seconds=30)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(receiver.requests) == 60 and len({r.event_id for r in receiver.requests}) == 60
    for k in range(6):
        assert [r.json["data"]["n"] for r in receiver.requests if r.json["data"]["subscription_id"] == f"sub-{k}"] == \
            list(range(1, 11))
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_unknown_types_and_missing_keys_are_refused_and_write_nothing(receiver):
    with pytest.raises(ValueError, match="unknown webhook event type"):
        emit(("distribution.refunded", "sub-a", {}))
    with pytest.raises(ValueError, match="ordering key"):
        emit(("distribution.paid", "", {}))
    with pytest.raises(TypeError):
        emit(("distribution.paid", "sub-a", {"when": object()}))
    with pytest.raises(RuntimeError, match="inside the transaction"):
        webhooks.emit("distribution.paid", {}, key="sub-a")  # autocommit: it could half-write
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


def test_a_commit_that_wrote_events_queues_their_delivery_once(receiver, q_sync):
    from django_q.models import OrmQ

    emit(paid("sub-a", 1), paid("sub-a", 2))  # one transaction: one task, run at once (sync mode)
    assert [r.json["data"]["n"] for r in receiver.requests] == [1, 2]
    assert not OrmQ.objects.exists()


def test_the_task_reports_its_counts(receiver):
    from profitshare.tasks import deliver_webhooks_task

    emit(paid("sub-a", 1))
    receiver.answers = [500]
    assert deliver_webhooks_task() == {"delivered": 0, "retried": 1, "failed": 0}


def test_a_batch_of_events_is_one_insert_per_table(receiver, settings):
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    settings.QV_WEBHOOK_URLS = [receiver.url, receiver.url + "/second"]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        webhooks.emit_many(PendingWebhook(*paid(f"sub-{n % 7}", n)) for n in range(50))
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("BEGIN", "COMMIT"))]
    assert len(statements) == 2 and all(s.startswith("INSERT") for s in statements)
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]
    assert (WebhookEvent.objects.count(), WebhookDelivery.objects.count()) == (50, 100)
