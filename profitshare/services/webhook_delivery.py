"""Delivering webhook events: at least once, in order per subscription, signed, with
exponential backoff and jitter for up to ``QV_WEBHOOK_GIVE_UP_HOURS`` (docs/design.md, "The
platform is told"; README "Webhooks").

**The request.** One HTTP POST per (event, endpoint) of the JSON body
``{"id", "type", "created_at", "data"}`` (``id``: the event's UUID, ``created_at``: ISO 8601
UTC) with ``X-QV-Event-Id`` (the same id, on every redelivery too), ``X-QV-Timestamp`` (unix
seconds of this attempt) and ``X-QV-Signature`` = hex HMAC-SHA256 of ``"{timestamp}.{raw
body}"`` keyed with ``QV_WEBHOOK_SECRET``. Any 2xx answer delivers it; anything else, a
timeout or a refused connection is an attempt that failed.

**In order, on any number of workers.** A round claims due pending deliveries with ``SELECT
… FOR UPDATE SKIP LOCKED`` and only the *head* of each queue (endpoint, subscription): the one
with no earlier pending delivery of the same queue. A claimed row stays pending and locked
until its answer is recorded, so another worker never takes it, nor the one behind it. A head
that fails waits for its retry, and its queue waits with it (an endpoint down for a while
receives each queue in order once it is back); other queues go on.

**Retries.** After the n-th failed attempt the next is due after ``min(max, base × 2^(n-1))``
seconds, jittered to 50-100 % of that (so a recovering endpoint is not hit by every queue at
once). When the next try would fall after ``give_up_at`` the delivery is ``failed`` and a
``webhook_failed`` alert is raised; the queue behind it moves on. An admin redelivers from the
console (``redeliver``): due at once, a new window of ``QV_WEBHOOK_GIVE_UP_HOURS``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from profitshare.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from profitshare.services.alerts import raise_alert
from profitshare.services.audit import record_event
from profitshare.services.webhooks import queue_delivery

logger = logging.getLogger(__name__)

USER_AGENT = "QuantumVault-Webhooks/1"
DRAIN_SECONDS = 20.0  # one task keeps claiming rounds this long while work is due


def body_of(event: WebhookEvent) -> bytes:
    """The raw JSON body POSTed for ``event`` (compact, keys in a fixed order)."""
    payload = {
        "id": str(event.uuid), "type": event.type,
        "created_at": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"), "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def sign(body: bytes, timestamp: int, secret: str) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"`` with ``secret`` (``X-QV-Signature``)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def headers_for(event: WebhookEvent, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The request headers of one attempt (signed at ``timestamp``, default now)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-QV-Event-Id": str(event.uuid), "X-QV-Timestamp": str(timestamp),
        "X-QV-Signature": sign(body, timestamp, settings.QV_WEBHOOK_SECRET),
    }


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones: ``min(QV_WEBHOOK_RETRY_MAX_SECONDS,
    QV_WEBHOOK_RETRY_BASE_SECONDS × 2^(attempts-1))`` seconds, jittered uniformly to 50-100 %."""
    base, cap = settings.QV_WEBHOOK_RETRY_BASE_SECONDS, settings.QV_WEBHOOK_RETRY_MAX_SECONDS
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay * (0.5 + (rng or random).random() / 2))


@dataclass(frozen=True)
class Answer:
    """One attempt's outcome: ``ok`` (a 2xx), ``status_code`` (None: no HTTP answer) and
    ``error`` (empty when ok)."""

    ok: bool
    status_code: int | None
    error: str


def post(client: httpx.Client, delivery: WebhookDelivery) -> Answer:
    """POST ``delivery``'s event to its endpoint once. Never raises for HTTP trouble."""
    body = body_of(delivery.event)
    try:
        response = client.post(delivery.endpoint, content=body, headers=headers_for(delivery.event, body))
    except httpx.HTTPError as exc:
        return Answer(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Answer(True, response.status_code, "")
    return Answer(False, response.status_code, f"HTTP {response.status_code}: {response.text[:300]}")


@functools.cache
def _client(timeout: float) -> httpx.Client:
    """One HTTP client per process and timeout, shared by the delivery threads (httpx clients
    are thread-safe): its connections stay open between rounds and tasks, and building one
    (its TLS context) costs more CPU than a round of deliveries."""
    return httpx.Client(timeout=timeout)


@dataclass(frozen=True)
class DeliveryCounts:
    """What ``deliver_due`` did: ``delivered``, ``retried`` (failed, due again later), ``failed``
    (gave up), ``rounds`` claimed."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    rounds: int = 0


def _claim(limit: int, now) -> list[WebhookDelivery]:
    earlier = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, endpoint=OuterRef("endpoint"), ordering_key=OuterRef("ordering_key"),
        event_id__lt=OuterRef("event_id"),
    )
    return list(
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("event")
        .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .exclude(Exists(earlier))
        .order_by("event_id", "id")[:limit]
    )


def _record(deliveries: list[WebhookDelivery], answers: list[Answer], now) -> tuple[int, int, int]:
    delivered: dict[int | None, list[int]] = {}  # status code -> ids: one UPDATE per code
    changed: list[WebhookDelivery] = []
    failed = 0
    for delivery, answer in zip(deliveries, answers, strict=True):
        if answer.ok:
            delivered.setdefault(answer.status_code, []).append(delivery.pk)
            continue
        delivery.attempts += 1
        delivery.last_status_code, delivery.last_error = answer.status_code, answer.error
        changed.append(delivery)
        next_at = now + retry_delay(delivery.attempts)
        if next_at <= delivery.give_up_at:
            delivery.next_attempt_at = next_at
            continue
        delivery.status = DeliveryStatus.FAILED
        failed += 1
        event = delivery.event
        raise_alert("webhook_failed",
                    f"webhook {event.type} {event.uuid} to {delivery.endpoint} failed after {delivery.attempts} "
                    f"attempts: {answer.error}", delivery=delivery.pk, event=str(event.uuid),
                    endpoint=delivery.endpoint, subscription=event.ordering_key)
    for code, pks in delivered.items():
        WebhookDelivery.objects.filter(pk__in=pks).update(
            status=DeliveryStatus.DELIVERED, delivered_at=now, attempts=F("attempts") + 1, last_status_code=code,
            last_error="")
    if changed:
        WebhookDelivery.objects.bulk_update(changed, ["attempts", "last_status_code", "last_error", "status",
                                                      "next_attempt_at"])
    return sum(len(pks) for pks in delivered.values()), len(changed) - failed, failed


def deliver_due(*, limit: int | None = None, now=None, drain_seconds: float = DRAIN_SECONDS,
                client: httpx.Client | None = None) -> DeliveryCounts:
    """Deliver what is due, round after round (each: up to ``limit``, default
    ``QV_WEBHOOK_BATCH_SIZE``, queue heads, POSTed ``QV_WEBHOOK_CONCURRENCY`` at a time, their
    answers recorded in the round's transaction) until a round finds nothing or
    ``drain_seconds`` passed; a round lasts at most ⌈limit / concurrency⌉ ×
    ``QV_WEBHOOK_TIMEOUT_SECONDS`` (its rows stay locked until then, so no other worker sends
    them meanwhile). ``now`` fixes the clock (tests); default: the time of each round.
    Returns the counts. Raises only database errors (a round then changes nothing)."""
    limit = limit or settings.QV_WEBHOOK_BATCH_SIZE
    deadline = time.monotonic() + drain_seconds
    delivered = retried = failed = rounds = 0
    client = client or _client(settings.QV_WEBHOOK_TIMEOUT_SECONDS)
    with ThreadPoolExecutor(max_workers=max(1, settings.QV_WEBHOOK_CONCURRENCY)) as pool:
        while True:
            with transaction.atomic():
                moment = now or timezone.now()
                claimed = _claim(limit, moment)
                if not claimed:
                    break
                answers = list(pool.map(lambda d: post(client, d), claimed))
                d, r, f = _record(claimed, answers, now or timezone.now())
            delivered, retried, failed, rounds = delivered + d, retried + r, failed + f, rounds + 1
            if time.monotonic() >= deadline:
                break
    if rounds:
        logger.info("webhooks: %s delivered, %s retried, %s failed in %s rounds", delivered, retried, failed, rounds)
    return DeliveryCounts(delivered, retried, failed, rounds)


def redeliver(delivery_ids: list[int], *, actor: str, now=None) -> list[int]:
    """Make deliveries due again at once (an admin's redelivery, from the console): each
    becomes ``pending`` with a new ``give_up_at`` window, whatever it was (delivered ones are
    sent again, with the same event id). Rows another worker is sending right now are
    skipped. Writes one audit event per delivery. Returns the ids made due, in id order."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk__in=list(delivery_ids)).order_by("id")
        )
        give_up = now + timedelta(hours=settings.QV_WEBHOOK_GIVE_UP_HOURS)
        for row in rows:
            before = row.status
            row.status, row.next_attempt_at, row.give_up_at, row.delivered_at = DeliveryStatus.PENDING, now, give_up, None
            record_event("webhook_delivery", row.pk, actor=actor, from_status=before, to_status=row.status,
                         reason="redelivery requested", endpoint=row.endpoint, attempts=row.attempts)
        WebhookDelivery.objects.bulk_update(rows, ["status", "next_attempt_at", "give_up_at", "delivered_at"])
    if rows:
        queue_delivery()
    return [row.pk for row in rows]
