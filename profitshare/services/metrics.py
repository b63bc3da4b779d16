"""Prometheus metrics (what an operator expects to scrape), with prometheus-client.

Two sources, both safe with several web and worker processes:

* **Ledger metrics, read from the database at scrape time** (``LedgerCollector``): whatever
  process answers ``/metrics`` reports the same figures — ``qv_distributions_paid_total``,
  ``qv_usdc_paid_base_units_total`` (landed payouts, USDC base units), ``qv_ious_open`` (open
  and processing IOUs), ``qv_ious_expired``, ``qv_usdc_owed_base_units`` (remaining on open,
  processing and expired IOUs), ``qv_payout_seconds`` (histogram: close received at intake ->
  payout confirmed), ``qv_subscriptions_delinquent``, ``qv_outbox_pending``,
  ``qv_reconciliation_mismatched`` (last report), ``qv_q_failed_tasks`` (django-q2 failures).
* **RPC endpoints' slots, read at scrape time** (``RpcSlotsCollector``, with the ledger):
  ``qv_rpc_slot{url}`` (each endpoint's confirmed slot) and ``qv_rpc_slots_behind{url}`` (slots
  behind the highest endpoint; NaN when the endpoint did not answer): how far behind a replica is
  (docs/design.md, "Expired only from a caught-up node").
* **Per-process counters**: ``qv_rpc_errors_total{url,kind}``, mirrored from the chain RPC
  pool's own counts by ``sync_rpc_errors`` (called before each django-q2 task and at every
  scrape). With ``PROMETHEUS_MULTIPROC_DIR`` set (set it before the processes start, and empty
  the directory on deploy) prometheus-client's multiprocess mode sums every process's files;
  unset, a plain registry reports this process only.
"""

from __future__ import annotations

import logging
import os
import threading

from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django_q.models import Failure
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from profitshare.chain.rpc import rpc_error_counts
from profitshare.models import (
    IOU,
    AttemptStatus,
    Distribution,
    DistributionStatus,
    IouStatus,
    PayoutAttempt,
    Subscription,
    SubscriptionStatus,
)
from profitshare.models.outbox import OutboxMessage, OutboxStatus
from profitshare.models.reconciliation import ReconciliationReport
from profitshare.services.health import redact_url, rpc_slots

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
PAYOUT_BUCKETS_SECONDS = (1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 6 * 3600, 86400)

RPC_ERRORS = Counter(
    "qv_rpc_errors", "RPC failures seen by the chain gateway, by endpoint and kind", ["url", "kind"], registry=None
)
_synced: dict[tuple[str, str], int] = {}
_sync_lock = threading.Lock()


LOOPBACK = ("127.0.0.1", "::1")


def metrics_token() -> str:
    """The bearer token ``/metrics`` requires (the ``QV_METRICS_TOKEN`` setting), or ``""``
    when none is configured."""
    from django.conf import settings

    return settings.QV_METRICS_TOKEN.strip()


def scrape_allowed(authorization: str, remote_addr: str, is_staff: bool) -> int:
    """Who may read ``/metrics``; returns the HTTP status to answer: 200, 401 or 403.

    With a token configured: ``Authorization: Bearer <token>`` (compared in constant time) or a
    staff session -> 200; no or another token -> 401 (loopback is not exempt: behind a reverse
    proxy every request comes from loopback). Without a token: requests from loopback
    (``REMOTE_ADDR`` 127.0.0.1 or ::1) or from staff -> 200, anyone else -> 403."""
    import hmac

    token = metrics_token()
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return 200
        return 200 if is_staff else 401
    return 200 if is_staff or remote_addr in LOOPBACK else 403


def multiprocess_dir() -> str:
    """The prometheus-client multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``), or ``""``."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def sync_rpc_errors() -> int:
    """Add the RPC pool's error counts accumulated since the last call to
    ``qv_rpc_errors_total`` (this process); returns how many were added."""
    added = 0
    with _sync_lock:
        for key, count in rpc_error_counts().items():
            delta = count - _synced.get(key, 0)
            if delta < 0:  # the pool's counters were reset
                delta = count
            if delta:
                url, kind = key
                RPC_ERRORS.labels(redact_url(url), kind).inc(delta)
                added += delta
            _synced[key] = count
    return added


class LedgerCollector:
    """A prometheus-client collector computing the ledger metrics from the database on each
    scrape (see the module docstring). A database error yields ``qv_metrics_database_up 0``
    instead of failing the scrape."""

    def collect(self):
        up = GaugeMetricFamily("qv_metrics_database_up", "1 when the ledger metrics could be read")
        try:
            paid = Distribution.objects.filter(status=DistributionStatus.PAID).count()
            usdc_paid = PayoutAttempt.objects.filter(status=AttemptStatus.LANDED).aggregate(t=Sum("amount"))["t"] or 0
            ious = IOU.objects.aggregate(
                open=Count("id", filter=Q(status__in=IouStatus.BLOCKING)),
                expired=Count("id", filter=Q(status=IouStatus.EXPIRED)),
                owed=Sum(F("amount") - F("paid_amount"),
                         filter=Q(status__in=IouStatus.ACTIVE)),
            )
            histogram = self._payout_histogram(PayoutAttempt, AttemptStatus)
            delinquent = Subscription.objects.filter(status=SubscriptionStatus.DELINQUENT).count()
            pending = OutboxMessage.objects.filter(status=OutboxStatus.PENDING).count()
            report = ReconciliationReport.objects.exclude(finished_at=None).first()
            failed_tasks = Failure.objects.count()
        except DatabaseError as exc:
            logger.error("metrics: database unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield CounterMetricFamily("qv_distributions_paid", "Distributions fully paid", value=paid)
        yield CounterMetricFamily("qv_usdc_paid_base_units", "USDC base units paid by landed payouts", value=usdc_paid)
        yield GaugeMetricFamily("qv_ious_open", "IOUs open or being retried", value=ious["open"])
        yield GaugeMetricFamily("qv_ious_expired", "IOUs past their TTL, still owed", value=ious["expired"])
        yield GaugeMetricFamily("qv_usdc_owed_base_units", "USDC base units still owed on IOUs", value=ious["owed"] or 0)
        yield histogram
        yield GaugeMetricFamily("qv_subscriptions_delinquent", "Delinquent subscriptions", value=delinquent)
        yield GaugeMetricFamily("qv_outbox_pending", "Notifications waiting to be delivered", value=pending)
        yield GaugeMetricFamily("qv_reconciliation_mismatched", "Mismatches in the last reconciliation",
                                value=report.mismatched + report.unrecorded if report else 0)
        yield GaugeMetricFamily("qv_q_failed_tasks", "django-q2 tasks that failed (kept failures)", value=failed_tasks)

    @staticmethod
    def _payout_histogram(PayoutAttempt, AttemptStatus) -> HistogramMetricFamily:
        from datetime import timedelta

        landed = PayoutAttempt.objects.filter(status=AttemptStatus.LANDED, distribution__close__isnull=False).annotate(
            took=ExpressionWrapper(F("resolved_at") - F("distribution__close__received_at"), output_field=DurationField())
        )
        buckets = {f"le_{i}": Count("id", filter=Q(took__lte=timedelta(seconds=b))) for i, b in enumerate(PAYOUT_BUCKETS_SECONDS)}
        row = landed.aggregate(n=Count("id"), total=Sum("took"), **buckets)
        pairs = [(str(float(b)), row[f"le_{i}"]) for i, b in enumerate(PAYOUT_BUCKETS_SECONDS)]
        pairs.append(("+Inf", row["n"]))
        total = row["total"].total_seconds() if row["total"] else 0.0
        return HistogramMetricFamily("qv_payout_seconds", "Seconds from close intake to payout confirmed",
                                     buckets=pairs, sum_value=total)


class RpcSlotsCollector:
    """A prometheus-client collector reading every ``QV_RPC_URLS`` endpoint's slot on each
    scrape (``health.rpc_slots``): ``qv_rpc_slot`` and ``qv_rpc_slots_behind`` by redacted URL."""

    def collect(self):
        from django.conf import settings

        slot = GaugeMetricFamily("qv_rpc_slot", "Confirmed slot of each RPC endpoint", labels=["url"])
        behind = GaugeMetricFamily(
            "qv_rpc_slots_behind", "Slots each RPC endpoint is behind the highest (NaN: no answer)", labels=["url"]
        )
        for url, reading in rpc_slots(list(settings.QV_RPC_URLS)).items():
            if reading["slot"] is not None:
                slot.add_metric([url], reading["slot"])
            behind.add_metric([url], float("nan") if reading["behind"] is None else reading["behind"])
        yield slot
        yield behind


def render(*, ledger: bool = True) -> bytes:
    """The Prometheus text exposition of every metric: the ledger and RPC-slot collectors (when
    ``ledger``) plus the per-process counters, summed over processes in multiprocess mode."""
    sync_rpc_errors()
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(RPC_ERRORS)
    if ledger:
        registry.register(LedgerCollector())
        registry.register(RpcSlotsCollector())
    return generate_latest(registry)
