"""``/healthz`` checks: the database, the django-q2 broker and the Solana RPC.

Each check answers ``{"ok": bool, ...details}``; one failing makes the whole answer unhealthy.
Failed django-q2 tasks are reported (``failed_tasks``) but do not make the service unhealthy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Failure

from profitshare.chain.rpc import endpoint_health, endpoint_slots, slots_behind
from profitshare.models import IOU, Alert, IouReason
from profitshare.redaction import redact_url, redact_urls_in
from profitshare.services.alerts import raise_alert


def check_database() -> dict[str, Any]:
    """``SELECT 1`` on the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return {"ok": False, "error": redact_urls_in(f"{type(exc).__name__}: {exc}")[:300]}
    return {"ok": True}


def check_broker() -> dict[str, Any]:
    """The django-q2 broker answers a ping and its queue size (ORM broker: a query on its
    table; Redis: a round trip)."""
    try:
        broker = get_broker()
        if not broker.ping():
            return {"ok": False, "error": "broker did not answer ping"}
        return {"ok": True, "queued": broker.queue_size(), "failed_tasks": Failure.objects.count()}
    except Exception as exc:  # any broker error (Redis, database) is an unhealthy broker
        return {"ok": False, "error": redact_urls_in(f"{type(exc).__name__}: {exc}")[:300]}


def check_rpc() -> dict[str, Any]:
    """``getHealth`` and ``getSlot`` on each of ``QV_RPC_URLS`` (timeout
    ``QV_HEALTHZ_TIMEOUT_SECONDS`` per call); healthy when at least one endpoint answers ``"ok"``
    (the pool fails over). ``endpoints``: ``{url: "ok" or what went wrong}``; ``slots``: ``{url:
    {"slot": confirmed slot, "behind": slots behind the highest endpoint}}`` (None: no answer),
    how far behind each one is (docs/design.md, "Expired only from a caught-up node"). Endpoints
    are named by ``redact_url``."""
    urls = list(settings.QV_RPC_URLS)
    answers = endpoint_health(urls, timeout=settings.QV_HEALTHZ_TIMEOUT_SECONDS)
    endpoints = {redact_url(url): answer for url, answer in answers.items()}
    return {"ok": any(v == "ok" for v in endpoints.values()), "endpoints": endpoints, "slots": rpc_slots(urls)}


def rpc_slots(urls: list[str]) -> dict[str, dict[str, int | None]]:
    """``{redacted url: {"slot": confirmed slot or None, "behind": slots behind the highest of
    ``urls`` or None}}``, read now (``getSlot``, ``QV_HEALTHZ_TIMEOUT_SECONDS`` each); for
    ``/healthz`` and the metrics."""
    slots = endpoint_slots(urls, timeout=settings.QV_HEALTHZ_TIMEOUT_SECONDS)
    behind = slots_behind(slots)
    return {redact_url(url): {"slot": slots[url], "behind": behind[url]} for url in urls}


def health() -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run every check; returns ``(healthy, {"database": …, "broker": …, "rpc": …})``."""
    checks = {"database": check_database(), "broker": check_broker(), "rpc": check_rpc()}
    return all(c["ok"] for c in checks.values()), checks


def alert_on_repeated_rpc_failures(now=None) -> bool:
    """Raise one ``rpc_failure`` alert (docs/design.md, "Repeated RPC failure") when at least
    ``QV_RPC_FAILURE_ALERT_THRESHOLD`` IOUs were created with reason ``rpc_unavailable`` in the
    last ``QV_RPC_FAILURE_WINDOW_MINUTES`` and no such alert was raised within that window.
    Read from the database, so it holds across processes. Returns True when it alerted."""
    now = now or timezone.now()
    since = now - timedelta(minutes=settings.QV_RPC_FAILURE_WINDOW_MINUTES)
    failures = IOU.objects.filter(reason=IouReason.RPC_UNAVAILABLE, created_at__gte=since, created_at__lte=now)
    count = failures.count()
    if count < settings.QV_RPC_FAILURE_ALERT_THRESHOLD:
        return False
    if Alert.objects.filter(kind="rpc_failure", created_at__gte=since, data__source="payouts").exists():
        return False
    owed = sum(iou.remaining for iou in failures)
    raise_alert("rpc_failure", f"{count} payouts failed for RPC unavailability in {settings.QV_RPC_FAILURE_WINDOW_MINUTES} min",
                amount=owed, source="payouts", count=count, rpc_urls=[redact_url(u) for u in settings.QV_RPC_URLS])
    return True
