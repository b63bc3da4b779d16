"""Read-only queries for the console's webhook deliveries (newest first)."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from profitshare.filters import WebhookDeliveryFilter
from profitshare.models import DeliveryStatus, WebhookDelivery

REDELIVER_LIMIT = 200


def deliveries(data) -> tuple[WebhookDeliveryFilter, QuerySet]:
    """Deliveries matching ``data`` (``WebhookDeliveryFilter``) with their events, newest
    first. An invalid filter matches nothing."""
    base = WebhookDelivery.objects.select_related("event")
    filterset = WebhookDeliveryFilter(data, queryset=base)
    qs = filterset.qs if filterset.is_valid() else base.none()
    return filterset, qs.order_by("-id")


def status_counts(qs: QuerySet) -> dict[str, int]:
    """How many of a deliveries queryset are in each status (every status present, 0 or more)."""
    counts = dict.fromkeys(DeliveryStatus.values, 0)
    for row in qs.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def delivery(delivery_id: int) -> WebhookDelivery | None:
    """One delivery with its event, or None."""
    return WebhookDelivery.objects.select_related("event").filter(pk=delivery_id).first()


def redelivery_candidates(data, *, limit: int = REDELIVER_LIMIT) -> list[int]:
    """Ids of the deliveries matching ``data`` that a redelivery of the filtered set would make
    due again (any status), oldest first, at most ``limit``."""
    _, qs = deliveries(data)
    return list(qs.order_by("id").values_list("pk", flat=True)[:limit])
