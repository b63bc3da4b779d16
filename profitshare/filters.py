"""django-filter FilterSets for the pages: they validate the query string (a form) and narrow
a queryset. Selectors apply them (HackSoft: ``FilterSet(filters, queryset).qs``); views only
render their forms."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Q

from profitshare.models import (
    IOU,
    DeliveryStatus,
    DistributionStatus,
    IouReason,
    IouStatus,
    LegRole,
    PublishedBot,
    WebhookDelivery,
    WebhookEventType,
)


def _start_of_day(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _created_on_or_after(queryset, name, value):
    """Rows created on or after the start of the UTC day ``value``."""
    return queryset.filter(created_at__gte=_start_of_day(value))


def _created_on_or_before(queryset, name, value):
    """Rows created before the end of the UTC day ``value``."""
    return queryset.filter(created_at__lt=_start_of_day(value + timedelta(days=1)))


def date_from_filter() -> django_filters.DateFilter:
    """A "From" date field (a UTC day, included) on the rows' ``created_at``."""
    return django_filters.DateFilter(
        method=_created_on_or_after, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )


def date_to_filter() -> django_filters.DateFilter:
    """A "To" date field (a UTC day, included) on the rows' ``created_at``."""
    return django_filters.DateFilter(
        method=_created_on_or_before, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )


class DistributionHistoryFilter(django_filters.FilterSet):
    """A creator's distribution history: by bot (only the creator's own, by ``bot_id``), status
    and a date range (UTC days, both ends included). ``creator_id`` limits the bot choices, so
    another creator's bot id is a form error, never a filter; ``bots`` (the creator's bots,
    when the caller already read them) spares that query."""

    bot = django_filters.ChoiceFilter(method="filter_bot", label="Bot", empty_label="All bots")
    status = django_filters.ChoiceFilter(choices=DistributionStatus.choices, empty_label="Any status")
    date_from = date_from_filter()
    date_to = date_to_filter()

    def __init__(self, data=None, queryset=None, *, creator_id: int, bots=None, **kwargs):
        super().__init__(data, queryset, **kwargs)
        if bots is None:
            bots = PublishedBot.objects.filter(creator_id=creator_id).order_by("name", "pk")
        bots = [b for b in bots if b.creator_id == creator_id]
        self._bot_pks = {bot.bot_id: bot.pk for bot in bots}
        self.filters["bot"].extra["choices"] = [(bot.bot_id, bot.name) for bot in bots]

    def filter_bot(self, queryset, name, value):
        """Distributions of the creator's bot whose external id is ``value``."""
        return queryset.filter(bot_id=self._bot_pks[value])


class LegHistoryFilter(django_filters.FilterSet):
    """A wallet's legs (its earnings page): by role (``LegRole``) and a date range (UTC days,
    both ends included, on the distribution's day). A role that does not exist is a form
    error, never a filter."""

    role = django_filters.ChoiceFilter(choices=LegRole.choices, empty_label="Any role")
    date_from = date_from_filter()
    date_to = date_to_filter()


class OpenIouFilter(django_filters.FilterSet):
    """The admin console's pending debts: by status (open, processing, expired), reason,
    creator address and subscriber wallet."""

    status = django_filters.ChoiceFilter(
        choices=IouStatus.choices_of(IouStatus.ACTIVE), empty_label="Any open status"
    )
    reason = django_filters.ChoiceFilter(choices=IouReason.choices, empty_label="Any reason")
    creator = django_filters.CharFilter(field_name="creator__address", label="Creator wallet")
    subscriber = django_filters.CharFilter(field_name="subscription__subscriber_wallet", label="Subscriber wallet")
    role = django_filters.ChoiceFilter(
        choices=LegRole.choices, method="filter_role", label="Owed to", empty_label="Any recipient"
    )
    recipient = django_filters.CharFilter(method="filter_recipient", label="Recipient wallet")

    class Meta:
        model = IOU
        fields = ["status", "reason", "creator", "subscriber", "role", "recipient"]

    def filter_role(self, queryset, name, value):
        """IOUs owed to a recipient of role ``value`` (``IOU.leg``'s role); an IOU recorded
        without a leg owes the creator."""
        if value == LegRole.CREATOR:
            return queryset.filter(Q(leg__isnull=True) | Q(leg__role=value))
        return queryset.filter(leg__role=value)

    def filter_recipient(self, queryset, name, value):
        """IOUs owed to wallet ``value`` (``IOU.leg``'s wallet; without a leg, the creator's)."""
        return queryset.filter(Q(leg__wallet=value) | Q(leg__isnull=True, creator__address=value))


class WebhookDeliveryFilter(django_filters.FilterSet):
    """The admin console's webhook deliveries: by status, event type, endpoint (exact) and
    subscription (the event's ordering key, exact)."""

    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices, empty_label="Any status")
    type = django_filters.ChoiceFilter(field_name="event__type", choices=[(t, t) for t in WebhookEventType.values],
                                       empty_label="Any event", label="Event")
    endpoint = django_filters.CharFilter(label="Endpoint")
    subscription = django_filters.CharFilter(field_name="ordering_key", label="Subscription")

    class Meta:
        model = WebhookDelivery
        fields = ["status", "type", "endpoint", "subscription"]
