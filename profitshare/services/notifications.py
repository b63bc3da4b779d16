"""Notifications through an outbox (docs/design.md, "Admins are told"); admin alerts are
raised with ``services.alerts.raise_alert``, which queues theirs here.

* ``enqueue``: write an ``OutboxMessage`` (one per ``dedupe_key``), in the caller's transaction.
* ``queue_payout_notices``: one message per landed payout to creators who linked a chat
  (amount, bot, signature link) and did not turn payout notices off;
* ``queue_creator_notices``: debts owed to a creator (an IOU opened, expired or voided) and
  subscribers of theirs turned delinquent, to creators who linked a chat and keep those on
  (``CreatorNotices``; the chat is linked with a one-time code, ``services.telegram_links``).
* ``deliver_due``: send due outbox rows with the Telegram Bot API (httpx); a failure is
  retried with exponential backoff up to ``QV_OUTBOX_MAX_ATTEMPTS``, so an outage loses
  nothing and never blocks a payout. Without ``QV_TELEGRAM_BOT_TOKEN`` rows are only stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from profitshare.models import (
    IOU,
    AttemptStatus,
    AuditEvent,
    CreatorNotices,
    LegRole,
    PayoutAttempt,
    Subscription,
)
from profitshare.models.outbox import OutboxMessage, OutboxStatus
from profitshare.money import explorer_url, format_usdc

logger = logging.getLogger(__name__)

def enqueue(chat_id: str, text: str, *, dedupe_key: str | None = None, now=None) -> OutboxMessage | None:
    """Queue one message for ``chat_id`` (due at once). With a ``dedupe_key`` already queued,
    nothing is written and None is returned. Raises ``ValueError`` on an empty chat id."""
    if not str(chat_id).strip():
        raise ValueError("chat_id must not be empty")
    if dedupe_key and OutboxMessage.objects.filter(dedupe_key=dedupe_key).exists():
        return None
    try:
        with transaction.atomic():
            return OutboxMessage.objects.create(
                chat_id=str(chat_id), text=text[:4096], dedupe_key=dedupe_key, next_attempt_at=now or timezone.now()
            )
    except IntegrityError:  # the same dedupe key queued concurrently
        return None


def queue_payout_notices(*, since_hours: int = 24, limit: int = 500) -> int:
    """Queue a creator notice for each payout landed in the last ``since_hours`` whose creator
    linked a Telegram chat and that has no notice yet (key ``payout:<signature>``): amount in
    USDC (the creator's own leg of it, when the share is split), bot name, explorer link.
    Returns how many were queued."""
    since = timezone.now() - timedelta(hours=since_hours)
    noticed = OutboxMessage.objects.filter(dedupe_key=Concat(Value("payout:"), OuterRef("signature")))
    attempts = (
        PayoutAttempt.objects.filter(status=AttemptStatus.LANDED, resolved_at__gte=since)
        .exclude(distribution__creator__telegram_chat_id="")
        .exclude(distribution__creator__notices__payouts=False)
        .exclude(Exists(noticed))
        .select_related("distribution__creator", "distribution__bot")
        .order_by("resolved_at", "id")[:limit]
    )
    queued = 0
    for attempt in attempts:
        dist = attempt.distribution
        amount = _creator_part(attempt, dist.creator.address)
        if not amount:
            continue  # it paid other legs only
        link = explorer_url(attempt.signature)
        text = f"You were paid {format_usdc(amount, grouping=False, trim=True)} USDC from {dist.bot.name}. {link}"
        if enqueue(dist.creator.telegram_chat_id, text, dedupe_key=f"payout:{attempt.signature}"):
            queued += 1
    return queued


def _creator_part(attempt: PayoutAttempt, creator: str) -> int:
    """Base units of ``attempt`` paid to the ``creator`` wallet (an attempt recorded without its
    legs paid the creator all of it)."""
    if not attempt.legs:
        return attempt.amount
    return sum(int(amount) for _, wallet, amount in attempt.legs if wallet == creator)


_IOU_NOTICES = {
    "opened": "{amount} USDC from {bot} is owed to you ({reason}); it is retried automatically.",
    "expired": "A debt of {amount} USDC from {bot} passed its time limit; it is still owed and still retried.",
    "voided": "A debt of {amount} USDC from {bot} was voided by an admin: {why}",
}


def queue_creator_notices(*, since_hours: int = 24, limit: int = 500) -> int:
    """Queue creator notices of the last ``since_hours`` (one per fact, keys ``iou:<id>:<kind>``
    and ``delinquent:<audit event id>``): an IOU of their own leg opened, expired or was voided
    (``debts`` choice), a subscriber of their bots turned delinquent (``delinquency``). Only
    creators with a linked chat; a creator without saved choices gets all. Returns how many
    were queued."""
    since = timezone.now() - timedelta(hours=since_hours)
    queued = 0
    ious = (
        IOU.objects.filter(Q(leg__isnull=True) | Q(leg__role=LegRole.CREATOR), created_at__gte=since)
        .exclude(creator__telegram_chat_id="")
        .exclude(creator__notices__debts=False).select_related("creator", "distribution__bot").order_by("id")[:limit]
    )
    for iou in ious:
        facts = {"amount": format_usdc(iou.amount - iou.paid_amount, grouping=False, trim=True), "bot": iou.distribution.bot.name,
                 "reason": iou.get_reason_display(), "why": iou.void_reason}
        kinds = ["opened"] + (["expired"] if iou.status == "expired" else []) + (["voided"] if iou.status == "voided" else [])
        for kind in kinds:
            if enqueue(iou.creator.telegram_chat_id, _IOU_NOTICES[kind].format(**facts), dedupe_key=f"iou:{iou.pk}:{kind}"):
                queued += 1
    marks = AuditEvent.objects.filter(entity="subscription", to_status="delinquent", created_at__gte=since).order_by("id")[:limit]
    subs = {s.subscription_id: s for s in Subscription.objects.filter(subscription_id__in=[m.entity_id for m in marks])
            .select_related("bot__creator__notices")}
    for mark in marks:
        sub = subs.get(mark.entity_id)
        creator = sub.bot.creator if sub else None
        if creator is None or not creator.telegram_chat_id or not _wants(creator, "delinquency"):
            continue
        text = (f"Subscriber {sub.subscriber_wallet[:4]}…{sub.subscriber_wallet[-4:]} of {sub.bot.name} moved "
                f"{format_usdc(int(mark.data.get('amount') or 0), grouping=False, trim=True)} USDC out while owing you; new trades stop copying.")
        if enqueue(creator.telegram_chat_id, text, dedupe_key=f"delinquent:{mark.pk}"):
            queued += 1
    return queued


def _wants(creator, kind: str) -> bool:
    try:
        return getattr(creator.notices, kind)
    except CreatorNotices.DoesNotExist:
        return True


@dataclass(frozen=True)
class DeliveryCounts:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def _retry_at(attempts: int, now, retry_after: int | None = None):
    delay = settings.QV_OUTBOX_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    return now + timedelta(seconds=max(delay, retry_after or 0))


def _send_telegram(client: httpx.Client, message: OutboxMessage) -> tuple[bool, str, int | None]:
    url = f"{settings.QV_TELEGRAM_API_URL.rstrip('/')}/bot{settings.QV_TELEGRAM_BOT_TOKEN}/sendMessage"
    try:
        response = client.post(url, json={"chat_id": message.chat_id, "text": message.text})
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}", None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200 and body.get("ok"):
        return True, "", None
    retry_after = (body.get("parameters") or {}).get("retry_after")
    description = body.get("description") or response.text[:200]
    return False, f"HTTP {response.status_code}: {description}", retry_after


def deliver_due(*, limit: int = 50, now=None) -> DeliveryCounts:
    """Send due pending outbox rows (``SELECT … FOR UPDATE SKIP LOCKED``, one row per
    transaction, so several workers never send the same message twice). Sent: ``sent``.
    Refused or unreachable: retried later (exponential backoff from
    ``QV_OUTBOX_RETRY_BASE_SECONDS``; Telegram's ``retry_after`` honoured), ``failed`` after
    ``QV_OUTBOX_MAX_ATTEMPTS``. Without a bot token nothing is sent. Returns the counts."""
    if not settings.QV_TELEGRAM_BOT_TOKEN:
        return DeliveryCounts()
    now = now or timezone.now()
    sent = retried = failed = 0
    with httpx.Client(timeout=10) as client:
        for _ in range(limit):
            with transaction.atomic():
                message = (
                    OutboxMessage.objects.select_for_update(skip_locked=True)
                    .filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
                    .order_by("next_attempt_at", "id")
                    .first()
                )
                if message is None:
                    break
                ok, error, retry_after = _send_telegram(client, message)
                message.attempts += 1
                if ok:
                    message.status, message.sent_at, message.last_error = OutboxStatus.SENT, timezone.now(), ""
                    sent += 1
                elif message.attempts >= settings.QV_OUTBOX_MAX_ATTEMPTS:
                    message.status, message.last_error = OutboxStatus.FAILED, error
                    failed += 1
                    logger.error("outbox %s gave up after %s attempts: %s", message.pk, message.attempts, error)
                else:
                    message.last_error, message.next_attempt_at = error, _retry_at(message.attempts, now, retry_after)
                    retried += 1
                message.save(update_fields=["attempts", "status", "sent_at", "last_error", "next_attempt_at"])
    return DeliveryCounts(sent=sent, retried=retried, failed=failed)
