"""Publishing bots and changing their terms (fee timelock protects existing subscribers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from profitshare.chain.addresses import parse_address
from profitshare.chain.errors import InvalidAddress
from profitshare.models import CreatorWallet, Policy, PublishedBot, Subscription
from profitshare.services import webhooks
from profitshare.services.audit import record_event
from profitshare.services.errors import Conflict, InvalidInput
from profitshare.services.policy import MAX_BPS


def validate_wallet_address(field: str, value: str) -> str:
    """The base58 text of a valid 32-byte address; ``InvalidInput`` otherwise."""
    try:
        return str(parse_address(value))
    except InvalidAddress as exc:
        raise InvalidInput(field, f"not a valid Solana address ({exc.why})") from exc


def validate_terms(bps: int, policy: str) -> None:
    """``InvalidInput`` unless 0 <= bps <= 1000 and the policy is known."""
    if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= MAX_BPS:
        raise InvalidInput("profit_share_bps", f"must be an integer in 0..{MAX_BPS} (0–10 %)")
    if policy not in Policy.values:
        raise InvalidInput("policy", f"must be one of {Policy.values}")


@dataclass(frozen=True)
class PublishResult:
    bot: PublishedBot
    created: bool


@transaction.atomic
def publish_bot(
    *, bot_id: str, creator_wallet: str, name: str, profit_share_bps: int, policy: str, actor: str
) -> PublishResult:
    """Create or update a published bot.

    A rate decrease reaches every existing subscription at once; an increase or a policy change
    is set pending on them until ``QV_FEE_CHANGE_TIMELOCK_DAYS`` pass (drift-vaults' fee
    timelock). Raises ``InvalidInput`` (an invalid creator address: publishing with one is
    refused, docs/design.md "Invalid creator address"; bps outside 0..1000, unknown policy,
    empty name) or ``Conflict`` (the bot id was deleted, or belongs to another creator wallet:
    the state, not the input, refuses it) with nothing written.
    """
    address = validate_wallet_address("creator_wallet", creator_wallet)
    validate_terms(profit_share_bps, policy)
    if not name.strip():
        raise InvalidInput("name", "must not be empty")
    creator, _ = CreatorWallet.objects.get_or_create(address=address)
    bot = PublishedBot.objects.select_for_update(no_key=True).filter(bot_id=bot_id).first()
    if bot is None:
        bot = PublishedBot.objects.create(
            bot_id=bot_id, creator=creator, name=name, profit_share_bps=profit_share_bps, policy=policy
        )
        record_event("bot", bot_id, actor=actor, to_status="published", bps=profit_share_bps, policy=policy)
        return PublishResult(bot, True)
    if bot.deleted_at is not None:
        raise Conflict(f"bot {bot_id!r} was deleted; publish it under a new id")
    if bot.creator_id != creator.id:
        raise Conflict(f"bot {bot_id!r} belongs to another creator wallet; a bot's creator wallet cannot change")
    old_bps, old_policy = bot.profit_share_bps, bot.policy
    bot.name, bot.profit_share_bps, bot.policy = name, profit_share_bps, policy
    bot.save(update_fields=["name", "profit_share_bps", "policy", "updated_at"])
    if (old_bps, old_policy) != (profit_share_bps, policy):
        _apply_terms_change(bot, actor)
        record_event(
            "bot", bot_id, actor=actor, reason="terms changed", old_bps=old_bps, new_bps=profit_share_bps,
            old_policy=old_policy, new_policy=policy,
        )
    return PublishResult(bot, False)


def _apply_terms_change(bot: PublishedBot, actor: str) -> None:
    now = timezone.now()
    effective_at = now + timedelta(days=settings.QV_FEE_CHANGE_TIMELOCK_DAYS)
    scheduled = []
    for sub in Subscription.objects.select_for_update(no_key=True).filter(bot=bot).exclude(status="ended"):
        if bot.policy == sub.policy and bot.profit_share_bps <= sub.profit_share_bps:
            old = sub.profit_share_bps
            sub.profit_share_bps = bot.profit_share_bps
            sub.pending_bps, sub.pending_policy, sub.pending_effective_at = None, "", None
            sub.save(update_fields=["profit_share_bps", "pending_bps", "pending_policy", "pending_effective_at"])
            record_event(
                "subscription", sub.subscription_id, actor=actor, reason="rate decrease applies at once",
                old_bps=old, new_bps=sub.profit_share_bps,
            )
        else:
            sub.pending_bps, sub.pending_policy = bot.profit_share_bps, bot.policy
            sub.pending_effective_at = effective_at
            sub.save(update_fields=["pending_bps", "pending_policy", "pending_effective_at"])
            record_event(
                "subscription", sub.subscription_id, actor=actor, reason="terms change pending (timelock)",
                pending_bps=sub.pending_bps, pending_policy=sub.pending_policy,
                effective_at=effective_at.isoformat(),
            )
            scheduled.append({"subscription_id": sub.subscription_id, "old_bps": sub.profit_share_bps,
                              "new_bps": sub.pending_bps, "old_policy": sub.policy, "new_policy": sub.pending_policy,
                              "effective_at": effective_at.isoformat()})
    webhooks.terms_scheduled(bot.bot_id, scheduled)


def apply_due_terms(sub: Subscription, *, now=None) -> bool:
    """Promote a subscription's pending terms once their timelock passed (caller holds the
    subscription row lock). Returns True when the terms changed; a policy change restarts the
    high-water mark from the current cumulative PnL."""
    now = now or timezone.now()
    if sub.pending_effective_at is None or sub.pending_effective_at > now:
        return False
    old_bps, old_policy = sub.profit_share_bps, sub.policy
    sub.profit_share_bps = sub.pending_bps
    sub.policy = sub.pending_policy
    if old_policy != sub.policy:
        sub.high_water_mark = max(0, sub.cumulative_pnl)
    sub.pending_bps, sub.pending_policy, sub.pending_effective_at = None, "", None
    record_event(
        "subscription", sub.subscription_id, actor="engine", reason="pending terms took effect",
        old_bps=old_bps, new_bps=sub.profit_share_bps, old_policy=old_policy, new_policy=sub.policy,
    )
    return True
