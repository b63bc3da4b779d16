"""Read-only queries for the admin console: pending debts, detail pages with the audit trail,
alerts, delinquent subscriptions and engine health. Amounts in USDC base units."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from profitshare.filters import OpenIouFilter
from profitshare.models import (
    IOU,
    Alert,
    AuditEvent,
    Distribution,
    DistributionLeg,
    DriftAction,
    IouReason,
    IouStatus,
    PayoutAttempt,
    Subscription,
    SubscriptionStatus,
)
from profitshare.models.reconciliation import ReconciliationReport
from profitshare.redaction import redact_url, redact_urls_in
from profitshare.selectors import leg_earnings

BULK_RETRY_LIMIT = 200
# what the debts table shows (the joined subscription and creator load only these too)
DEBTS_COLUMNS = (
    "amount", "paid_amount", "reason", "status", "created_at", "attempts", "next_retry_at",
    "subscription__subscriber_wallet", "creator__address", "leg__role", "leg__wallet",
)
ALERTS_LIMIT = 50


def _annotated(qs: QuerySet) -> QuerySet:
    # the page's subscriptions, creators and legs (whom each IOU owes) are joined in the same
    # query: sorting and limiting run on the pending IOUs' partial indexes (migration 0006), the
    # joins only on the page's rows; the amount still owed is computed in SQL so the table can
    # sort on it
    return qs.select_related("subscription", "creator", "leg").annotate(remaining_owed=F("amount") - F("paid_amount"))


def open_ious(data) -> tuple[OpenIouFilter, QuerySet]:
    """Every open, processing or expired IOU matching ``data`` (``OpenIouFilter``), annotated
    with ``remaining_owed`` (with its subscription, creator and leg: whom it owes, null for the
    creator); oldest first unless the table sorts it otherwise. An invalid filter matches
    nothing."""
    base = _annotated(IOU.objects.filter(status__in=IouStatus.ACTIVE)).only(*DEBTS_COLUMNS)
    filterset = OpenIouFilter(data, queryset=base)
    qs = filterset.qs if filterset.is_valid() else base.none()
    return filterset, qs.order_by("created_at", "pk")


def debt_totals(qs: QuerySet) -> dict:
    """Totals of a debts queryset: ``by_reason`` rows (``reason``, ``label``, ``count``,
    ``remaining``; largest first) and the overall ``count`` and ``remaining``."""
    labels = dict(IouReason.choices)
    rows = list(
        qs.order_by()
        .values("reason")
        .annotate(count=Count("pk"), total=Sum(F("amount") - F("paid_amount")))
        .order_by("-total", "reason")
    )
    by_reason = [
        {"reason": r["reason"], "label": labels.get(r["reason"], r["reason"]), "count": r["count"],
         "remaining": r["total"] or 0}
        for r in rows
    ]
    return {
        "by_reason": by_reason,
        "count": sum(r["count"] for r in by_reason),
        "remaining": sum(r["remaining"] for r in by_reason),
    }


def treasury() -> dict | None:
    """The platform treasury's legs (``QV_PLATFORM_TREASURY``): paid, owed, voided and
    carried, as ``selectors.leg_earnings.treasury_totals``; None when no treasury is set."""
    return leg_earnings.treasury_totals(settings.QV_PLATFORM_TREASURY)


def retry_candidates(data, *, limit: int = BULK_RETRY_LIMIT) -> list[int]:
    """Ids of the open or expired IOUs matching ``data`` that a bulk retry would claim, oldest
    first, at most ``limit``."""
    _, qs = open_ious(data)
    return list(qs.filter(status__in=("open", "expired")).values_list("pk", flat=True)[:limit])


def iou_row(iou_id: int) -> IOU | None:
    """One IOU annotated like the debts table (any status), or None."""
    return _annotated(IOU.objects.filter(pk=iou_id)).first()


def _trail(distribution: Distribution, iou_ids: list[int], signatures: list[str]) -> list[AuditEvent]:
    q = Q(entity="distribution", entity_id=str(distribution.pk))
    if iou_ids:
        q |= Q(entity="iou", entity_id__in=[str(pk) for pk in iou_ids])
    if signatures:
        q |= Q(entity="payout_attempt", entity_id__in=signatures)
    if distribution.close_id:
        q |= Q(entity="close", entity_id=distribution.close.close_id)
    return list(AuditEvent.objects.filter(q).order_by("created_at", "pk"))


def _detail(distributions: QuerySet) -> dict | None:
    dist = distributions.select_related("close", "subscription", "bot", "creator").first()
    if dist is None:
        return None
    attempts = list(
        PayoutAttempt.objects.filter(distribution=dist)
        .order_by("created_at", "pk")
        .values("signature", "path", "settles", "withdraw_amount", "amount", "status", "error", "slot", "fee_lamports",
                "created_at", "resolved_at", "iou_id")
    )
    drift_actions = list(
        DriftAction.objects.filter(distribution=dist).order_by("created_at", "pk")
        .values("signature", "kind", "amount", "delivered", "status", "error", "created_at")
    )
    ious = list(_annotated(IOU.objects.filter(distribution=dist)).order_by("created_at", "pk"))
    legs = sorted(
        DistributionLeg.objects.filter(distribution=dist), key=lambda leg: (leg_earnings.ROLE_ORDER[leg.role], leg.pk)
    )
    return {
        "distribution": dist,
        "legs": legs,
        "attempts": attempts,
        "drift_actions": drift_actions,
        "ious": ious,
        "trail": _trail(dist, [iou.pk for iou in ious], [a["signature"] for a in attempts]),
    }


def distribution_detail(distribution_id: int) -> dict | None:
    """A distribution with its close, subscription, bot and creator, its legs (creator,
    platform, referral levels 1-3), its payout attempts (signatures), its IOUs and the full
    audit trail of all of them (oldest first); None when it does not exist. Five queries."""
    return _detail(Distribution.objects.filter(pk=distribution_id))


def iou_detail(iou_id: int) -> dict | None:
    """An IOU (annotated like the debts table) with its distribution's detail (legs,
    attempts, audit trail); None when it does not exist. Five queries."""
    detail = _detail(Distribution.objects.filter(ious__pk=iou_id))
    if detail is None:
        return None
    iou = next(i for i in detail["ious"] if i.pk == iou_id)
    return {"iou": iou, **detail}


def alerts_feed(*, include_acknowledged: bool = False, limit: int = ALERTS_LIMIT) -> dict:
    """The newest ``limit`` alerts (unacknowledged only unless ``include_acknowledged``) and
    the count of unacknowledged ones."""
    qs = Alert.objects.all()
    if not include_acknowledged:
        qs = qs.filter(acknowledged_at__isnull=True)
    return {
        "alerts": list(qs.order_by("-created_at", "-pk")[:limit]),
        "unacknowledged": Alert.objects.filter(acknowledged_at__isnull=True).count(),
    }


def alert(alert_id: int) -> Alert | None:
    """One alert, or None."""
    return Alert.objects.filter(pk=alert_id).first()


def delinquent_subscriptions() -> list[dict]:
    """Delinquent subscriptions with what they still owe (open, processing and expired IOUs)
    and what they moved out while owing, as recorded by the event that marked them
    (``moved_out`` in USDC base units, ``moved_lamports`` of SOL and ``moved_signature``; None
    when not recorded)."""
    subs = list(
        Subscription.objects.filter(status=SubscriptionStatus.DELINQUENT)
        .annotate(
            owed=Coalesce(
                Sum(F("ious__amount") - F("ious__paid_amount"), filter=Q(ious__status__in=IouStatus.ACTIVE)), 0
            )
        )
        .values("pk", "subscription_id", "subscriber_wallet", "owed", bot_name=F("bot__name"),
                creator_address=F("bot__creator__address"))
        .order_by("-owed", "subscription_id")
    )
    marks = AuditEvent.objects.filter(
        entity="subscription", entity_id__in=[s["subscription_id"] for s in subs], to_status=SubscriptionStatus.DELINQUENT
    ).order_by("created_at", "pk")
    moved: dict[str, dict] = {}
    for event in marks:  # oldest first: the newest marking wins
        moved[event.entity_id] = event.data or {}
    for sub in subs:
        facts = moved.get(sub["subscription_id"], {})
        sub["moved_out"] = facts.get("amount")
        sub["moved_lamports"] = facts.get("lamports")
        sub["moved_signature"] = facts.get("signature")
    return subs


def engine_health() -> dict:
    """The engine as django-q2 sees it: clusters reporting (``Stat``), queue depth, failed
    tasks (count and newest five), each schedule's last and next run, the newest successful
    task; the last reconciliation report and the newest ``reconciliation*`` alert."""
    from django_q.brokers import get_broker
    from django_q.models import Failure, Schedule, Success, Task
    from django_q.status import Stat

    broker = get_broker()
    try:
        queued = broker.queue_size()
    except Exception as exc:  # a broker that cannot be reached is what this page must show
        queued = f"unavailable ({exc.__class__.__name__})"
    try:
        clusters = [
            {"cluster_id": s.cluster_id, "status": s.status, "workers": len(s.workers), "uptime": int(s.uptime())}
            for s in Stat.get_all(broker)
        ]
    except Exception:
        clusters = []
    schedules = []
    for sched in Schedule.objects.order_by("name"):
        last = Task.objects.filter(pk=sched.task).values("stopped", "success").first() if sched.task else None
        schedules.append(
            {
                "name": sched.name, "func": sched.func, "next_run": sched.next_run,
                "last_run": last["stopped"] if last else None, "last_ok": last["success"] if last else None,
            }
        )
    return {
        "broker": broker.__class__.__name__,
        "queued": queued,
        "clusters": clusters,
        "failed_count": Failure.objects.count(),
        "failures": [
            {**failure, "result": redact_urls_in(str(failure["result"]))}
            for failure in Failure.objects.order_by("-stopped").values("name", "func", "stopped", "result")[:5]
        ],
        "last_success": Success.objects.order_by("-stopped").values_list("stopped", flat=True).first(),
        "schedules": schedules,
        "reconciliation": ReconciliationReport.objects.order_by("-started_at", "-pk").first(),
        "reconciliation_alert": Alert.objects.filter(kind__startswith="reconcil").order_by("-created_at").first(),
        "now": timezone.now(),
        "rpc_urls": [redact_url(url) for url in settings.QV_RPC_URLS],
    }
