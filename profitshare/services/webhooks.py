"""Webhook events for the trading platform, written as an outbox (docs/design.md, "The
platform is told"; the contract: README "Webhooks").

Each state change the platform acts on calls one function here *inside the transaction that
makes the change*, so an event exists exactly when its change committed: none is lost, none
describes a rolled-back change. Every event gets one ``WebhookDelivery`` per endpoint of
``QV_WEBHOOK_URLS``; with no endpoint configured nothing is written (and nothing is read).
Batches are written with one INSERT of events and one of deliveries (``profitshare.db.bulk``), as the
engine writes its audit events. Delivery is ``services.webhook_delivery``.

``data`` of every event: external ids (``subscription_id``, ``close_id``, ``bot_id``), our
row ids (``distribution_id``, ``iou_id``), amounts in USDC base units (integers), reason codes
(``IouReason`` values) and transaction signatures (base58).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from profitshare.db.bulk import insert_rows
from profitshare.models import (
    IOU,
    Distribution,
    LegRole,
    PayoutAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookEventType,
)

T = WebhookEventType
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingWebhook:
    """An event not written yet: ``type`` (a ``WebhookEventType`` value), ``key`` (the external
    subscription id it is about: its ordering key) and ``data`` (JSON-serialisable)."""

    type: str
    key: str
    data: dict[str, Any] = field(default_factory=dict)


def enabled() -> bool:
    """Whether any webhook endpoint is configured (``QV_WEBHOOK_URLS``)."""
    return bool(settings.QV_WEBHOOK_URLS)


def emit(type: str, data: dict[str, Any], *, key: str) -> None:
    """Write one event (and its deliveries) in the caller's transaction; see ``emit_many``."""
    emit_many([PendingWebhook(type, key, data)])


def emit_many(events: Iterable[PendingWebhook]) -> None:
    """Write ``events`` and one pending delivery per endpoint each: one INSERT per table, in
    the caller's transaction (call it inside the ``transaction.atomic`` of the change). After
    that transaction commits a delivery task is queued (once per transaction); the schedule
    delivers anyway if that queueing fails. Nothing happens without endpoints.

    Raises ``RuntimeError`` outside a transaction, ``ValueError`` for an unknown type or an
    empty key, ``TypeError`` for data that is not JSON-serialisable; nothing is written then."""
    urls = settings.QV_WEBHOOK_URLS
    events = list(events) if urls else []
    if not events:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("webhook events are written inside the transaction.atomic() of the change they report")
    for e in events:
        if e.type not in T.values:
            raise ValueError(f"unknown webhook event type {e.type!r}")
        if not e.key:
            raise ValueError(f"webhook event {e.type} needs an ordering key (the subscription id)")
    now = timezone.now()
    rows = [(uuid.uuid4(), e.type, e.key, e.data, now) for e in events]
    returned = insert_rows(WebhookEvent, ("uuid", "type", "ordering_key", "data", "created_at"), rows, returning="uuid")
    # PostgreSQL answers a UUID, SQLite its hex text
    ids = {value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)): pk for value, pk in returned}
    give_up = now + timedelta(hours=settings.QV_WEBHOOK_GIVE_UP_HOURS)
    insert_rows(WebhookDelivery, ("event_id", "endpoint", "ordering_key", "next_attempt_at", "give_up_at", "created_at"), [
        (ids[u], url, key, now, give_up, now) for u, _, key, _, _ in rows for url in urls
    ])
    _deliver_after_commit()


DELIVERY_TASK = "profitshare.tasks.deliver_webhooks_task"  # the django-q2 entry point, by name
DELIVERY_GROUP = "webhooks"


@functools.cache
def _broker():
    """One django-q2 broker per process (building one per enqueue costs a connection pool)."""
    return get_broker()


def queue_delivery() -> None:
    """Queue a delivery task now. Never raises: when the broker is unreachable the
    ``qv-webhooks`` schedule delivers (a payout must never fail because of a webhook)."""
    try:
        async_task(DELIVERY_TASK, group=DELIVERY_GROUP, broker=_broker(), save=False)
    except Exception:  # noqa: BLE001 - see above
        logger.warning("webhook delivery task not queued; the schedule delivers", exc_info=True)


def _deliver_after_commit() -> None:
    connection = transaction.get_connection()
    if any(func is queue_delivery for _, func, _ in connection.run_on_commit):
        return  # already queued for this transaction
    transaction.on_commit(queue_delivery, robust=True)


_FACTS = ("pk", "subscription__subscription_id", "close__close_id", "bot__bot_id", "creator__address")


def _fact(row: dict[str, Any]) -> dict[str, Any]:
    return {"subscription_id": row["subscription__subscription_id"], "close_id": row["close__close_id"],
            "bot_id": row["bot__bot_id"], "creator_wallet": row["creator__address"], "distribution_id": row["pk"]}


def _distribution_facts(distribution_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    rows = Distribution.objects.filter(pk__in=set(distribution_ids)).values(*_FACTS)
    return {r["pk"]: _fact(r) for r in rows}


def _facts_and_leg_roles(distribution_ids: Iterable[int]) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """``_distribution_facts`` and the role of each leg of those distributions (by leg id), in
    one query: a row per leg."""
    facts: dict[int, dict[str, Any]] = {}
    roles: dict[int, str] = {}
    for r in Distribution.objects.filter(pk__in=set(distribution_ids)).values(*_FACTS, "legs__pk", "legs__role"):
        facts.setdefault(r["pk"], _fact(r))
        if r["legs__pk"] is not None:
            roles[r["legs__pk"]] = r["legs__role"]
    return facts, roles


# --- the events, built where the state changes ------------------------------------------------------
def payouts_landed(landed: list[PayoutAttempt], distributions: dict[int, Distribution], paid_ious: list[IOU]) -> None:
    """``distribution.paid`` for each landed payout attempt (``amount`` this payout,
    ``legs`` it paid: ``[{"role", "wallet", "amount"}]`` in transfer order, from the attempt's
    ``legs`` (one creator leg for an attempt recorded without them), ``paid`` / ``owed`` totals
    after it, ``status``, ``signature``, ``slot``, ``iou_id`` when it paid an IOU) and
    ``iou.paid`` for each IOU paid in full by them (``amount``, ``paid_amount``, the last
    ``signature``). ``distributions``: the rows as updated, by id. One query for the external
    ids and the legs' roles, one INSERT per table; nothing without endpoints."""
    if not enabled() or not landed:
        return
    facts, roles = _facts_and_leg_roles(distributions)
    events = []
    last_signature: dict[int, str] = {}
    for attempt in landed:
        dist = distributions[attempt.distribution_id]
        base = facts[dist.pk]
        legs = [
            {"role": roles.get(leg_id), "wallet": wallet, "amount": amount} for leg_id, wallet, amount in attempt.legs
        ] or [{"role": LegRole.CREATOR.value, "wallet": attempt.destination_owner, "amount": attempt.amount}]
        events.append(PendingWebhook(T.DISTRIBUTION_PAID, base["subscription_id"], {
            **base, "amount": attempt.amount, "legs": legs, "paid": dist.paid, "owed": dist.owed,
            "status": dist.status, "signature": attempt.signature, "slot": attempt.slot, "iou_id": attempt.iou_id,
        }))
        last_signature[dist.pk] = attempt.signature
    for iou in paid_ious:
        base = facts[iou.distribution_id]
        events.append(PendingWebhook(T.IOU_PAID, base["subscription_id"], {
            **base, "iou_id": iou.pk, "amount": iou.amount, "paid_amount": iou.paid_amount,
            "reason": iou.reason, "signature": last_signature.get(iou.distribution_id),
        }))
    emit_many(events)


def share_owed(dist: Distribution, iou: IOU, *, reason: str, opened: bool, status_changed: bool) -> None:
    """``distribution.owed`` when a distribution's status became owed or partially paid
    (``owed``, ``paid``, ``status``, ``reason`` code, ``iou_id``) and ``iou.opened`` when the
    IOU is new (``amount``, ``reason``, ``expires_at``, ``next_retry_at``). A retry that falls
    short again changes neither, so emits nothing."""
    if not enabled() or not (opened or status_changed):
        return
    base = _distribution_facts([dist.pk])[dist.pk]
    events = []
    if status_changed:
        events.append(PendingWebhook(T.DISTRIBUTION_OWED, base["subscription_id"], {
            **base, "owed": dist.owed, "paid": dist.paid, "status": dist.status, "reason": reason, "iou_id": iou.pk,
        }))
    if opened:
        events.append(PendingWebhook(T.IOU_OPENED, base["subscription_id"], {
            **base, "iou_id": iou.pk, "amount": iou.amount, "reason": reason,
            "expires_at": iou.expires_at.isoformat(), "next_retry_at": iou.next_retry_at.isoformat(),
        }))
    emit_many(events)


def iou_voided(iou: IOU, *, voided: int) -> None:
    """``iou.voided``: ``voided`` base units forgiven, the admin's ``void_reason`` and
    ``voided_by``."""
    if not enabled():
        return
    base = _distribution_facts([iou.distribution_id])[iou.distribution_id]
    emit(T.IOU_VOIDED, {**base, "iou_id": iou.pk, "amount": iou.amount, "paid_amount": iou.paid_amount,
                        "voided": voided, "reason": iou.reason, "void_reason": iou.void_reason,
                        "voided_by": iou.voided_by}, key=base["subscription_id"])


def ious_expired(ious: list[IOU]) -> None:
    """``iou.expired`` for each IOU past its TTL: ``remaining`` base units (still owed),
    ``expires_at``; it no longer blocks the subscriber."""
    if not enabled() or not ious:
        return
    facts = _distribution_facts(i.distribution_id for i in ious)
    emit_many(
        PendingWebhook(T.IOU_EXPIRED, facts[i.distribution_id]["subscription_id"], {
            **facts[i.distribution_id], "iou_id": i.pk, "amount": i.amount, "remaining": i.remaining,
            "reason": i.reason, "expires_at": i.expires_at.isoformat(),
        })
        for i in ious
    )


def subscription_delinquent(subscription_id: str, facts: dict[str, Any]) -> None:
    """``subscription.delinquent``: stop copying new trades into it. ``facts``: what moved out
    (``amount`` USDC base units, ``lamports``, ``signature``, ``signatures``, ...)."""
    emit(T.SUBSCRIPTION_DELINQUENT, {"subscription_id": subscription_id, "reason": "funds_moved_out", **facts},
         key=subscription_id)


def subscription_cleared(subscription_id: str) -> None:
    """``subscription.cleared``: a delinquent subscription has no active IOU any more."""
    emit(T.SUBSCRIPTION_CLEARED, {"subscription_id": subscription_id, "reason": "debts_paid"}, key=subscription_id)


def terms_scheduled(bot_id: str, changes: list[dict[str, Any]]) -> None:
    """``bot.terms_scheduled`` per subscription whose terms wait for the timelock: each of
    ``changes`` has ``subscription_id``, ``old_bps`` / ``new_bps`` (basis points),
    ``old_policy`` / ``new_policy`` and ``effective_at`` (ISO 8601, UTC)."""
    emit_many(PendingWebhook(T.BOT_TERMS_SCHEDULED, c["subscription_id"], {"bot_id": bot_id, **c}) for c in changes)
