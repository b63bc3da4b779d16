"""Read-only queries for the public marketplace snippet of a bot."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from profitshare.models import Distribution, PublishedBot

WINDOW_DAYS = 30


def bot_snippet(bot_id: str, *, now=None) -> dict | None:
    """A live bot's public terms and its creator's earnings over the last 30 days: ``bot_id``,
    ``name``, ``profit_share_bps``, ``policy`` (label), ``earned_30d`` (shares of the closes
    of the last 30 days, USDC base units), ``closes_30d`` and ``subscribers_30d`` (distinct
    subscriptions that owed a share). None for an unknown or deleted bot."""
    bot = PublishedBot.objects.filter(bot_id=bot_id, deleted_at__isnull=True).first()
    if bot is None:
        return None
    since = (now or timezone.now()) - timedelta(days=WINDOW_DAYS)
    sums = Distribution.objects.filter(bot=bot, created_at__gte=since).aggregate(
        earned=Coalesce(Sum("share"), 0),
        closes=Count("pk"),
        subscribers=Count("subscription_id", distinct=True),
    )
    return {
        "bot_id": bot.bot_id,
        "name": bot.name,
        "profit_share_bps": bot.profit_share_bps,
        "policy": bot.get_policy_display(),
        "earned_30d": sums["earned"],
        "closes_30d": sums["closes"],
        "subscribers_30d": sums["subscribers"],
        "window_days": WINDOW_DAYS,
    }
