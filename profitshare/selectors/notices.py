"""What people are told before it applies: a subscription's scheduled terms change, and a
creator's Telegram link and notice choices."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from profitshare.models import CreatorNotices, CreatorWallet, Policy, Subscription, TelegramLinkCode


def scheduled_terms(subscription: Subscription) -> dict | None:
    """The subscription's rate increase or policy change waiting for its timelock, or None:
    ``old_bps`` / ``new_bps`` (basis points), ``old_policy`` / ``new_policy`` (labels),
    ``policy_changes`` and ``effective_at`` (when it applies to closes from then on)."""
    if subscription.pending_effective_at is None or subscription.pending_bps is None:
        return None
    labels = dict(Policy.choices)
    return {
        "old_bps": subscription.profit_share_bps, "new_bps": subscription.pending_bps,
        "old_policy": labels.get(subscription.policy, subscription.policy),
        "new_policy": labels.get(subscription.pending_policy, subscription.pending_policy),
        "policy_changes": subscription.pending_policy != subscription.policy,
        "effective_at": subscription.pending_effective_at,
    }


def telegram_link(creator: CreatorWallet | None) -> dict:
    """A creator's Telegram state for the dashboard: ``linked`` (a chat is set), the open
    one-time ``code`` (newest, unused, unexpired; None) and its ``start_url`` (``t.me`` deep
    link when ``QV_TELEGRAM_BOT_USERNAME`` is set), and the notice choices ``notices``
    (``CreatorNotices``, defaults when none were saved)."""
    if creator is None:
        return {"linked": False, "code": None, "start_url": "", "notices": CreatorNotices(), "bot": ""}
    code = (
        TelegramLinkCode.objects.filter(creator=creator, used_at__isnull=True, expires_at__gt=timezone.now())
        .order_by("-created_at").first()
    )
    bot = settings.QV_TELEGRAM_BOT_USERNAME
    return {
        "linked": bool(creator.telegram_chat_id),
        "code": code,
        "start_url": f"https://t.me/{bot}?start={code.code}" if code and bot else "",
        "notices": CreatorNotices.objects.filter(creator=creator).first() or CreatorNotices(creator=creator),
        "bot": bot,
    }
